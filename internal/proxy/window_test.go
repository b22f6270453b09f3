package proxy

import (
	"math"
	"testing"
	"time"
)

func TestBucketBoundsContainTheirDurations(t *testing.T) {
	prev := 0
	for d := time.Duration(0); d < 10*time.Minute; d = d*9/8 + time.Microsecond {
		i := bucketOf(d)
		if i < prev {
			t.Fatalf("bucketOf(%s) = %d, below %d for a shorter duration", d, i, prev)
		}
		prev = i
		lo, hi := bucketBounds(i)
		if i == nBuckets-1 {
			if d < lo {
				t.Fatalf("last bucket: %s below its low bound %s", d, lo)
			}
			continue
		}
		d := d.Truncate(time.Microsecond)
		if d < lo || d >= hi {
			t.Fatalf("bucketOf(%s) = %d with bounds [%s, %s)", d, i, lo, hi)
		}
		if i >= 8 && float64(hi-lo)/float64(lo+hi) > 0.125 {
			t.Fatalf("bucket %d [%s, %s) is wider than ±12.5%%", i, lo, hi)
		}
	}
	if got := bucketOf(-time.Second); got != 0 {
		t.Errorf("a negative duration falls in bucket %d", got)
	}
}

func TestWindowPercentilesAndRate(t *testing.T) {
	var w window
	start := 100 * int64(time.Second)
	w.created = start - 60*int64(time.Second)
	for i := range 100 {
		d := time.Millisecond
		code := 200
		if i >= 90 {
			d, code = 100*time.Millisecond, 503
		}
		// spread over 5 s of the window
		w.add(start+int64(i%5)*int64(time.Second), code, d, true)
	}
	now := start + 5*int64(time.Second) - 1
	var s snapshot
	w.read(now, &s)
	tr := s.traffic(3)
	near := func(got, want time.Duration) bool { return got >= want*7/8 && got <= want*9/8 }
	if !near(tr.P50, time.Millisecond) || !near(tr.P95, 100*time.Millisecond) || !near(tr.P99, 100*time.Millisecond) {
		t.Errorf("percentiles p50 %s p95 %s p99 %s", tr.P50, tr.P95, tr.P99)
	}
	if math.Abs(tr.Rate-10) > 0.001 {
		t.Errorf("rate %v, want 100 requests / 10 s", tr.Rate)
	}
	if tr.Codes["2xx"] != 90 || tr.Codes["5xx"] != 10 || len(tr.Codes) != 2 || tr.InFlight != 3 {
		t.Errorf("traffic %+v", tr)
	}
	if n := w.count(now); n != 100 {
		t.Errorf("count %d", n)
	}
}

func TestWindowForgetsOldSeconds(t *testing.T) {
	var w window
	sec := int64(time.Second)
	w.add(3*sec, 200, time.Millisecond, true)
	w.add(3*sec+sec/2, 200, time.Millisecond, true)
	if n := w.count(12 * sec); n != 2 {
		t.Fatalf("count within the window = %d", n)
	}
	if n := w.count(13 * sec); n != 0 {
		t.Fatalf("count after the window = %d", n)
	}
	// The same slot, 16 s later, starts from zero.
	w.add(19*sec, 200, time.Millisecond, true)
	if n := w.count(19 * sec); n != 1 {
		t.Fatalf("count after the slot's reuse = %d", n)
	}
	// A straggler from a second the slot no longer holds is dropped.
	w.add(3*sec, 200, time.Millisecond, true)
	if n := w.count(19 * sec); n != 1 {
		t.Fatalf("a straggler was counted: %d", n)
	}
}

func TestYoungWindowRate(t *testing.T) {
	w := window{created: 50 * int64(time.Second)}
	for range 40 {
		w.add(51*int64(time.Second), 200, time.Millisecond, true)
	}
	var s snapshot
	w.read(52*int64(time.Second), &s)
	if got := s.traffic(0).Rate; got != 20 {
		t.Errorf("rate over the 2 s the window has existed = %v, want 20", got)
	}
}

// Two loads whose p95 falls in one bucket read apart: the rank is placed
// within the bucket, not at its middle. Both have their p95 in the bucket of
// 61 ms; the second has half its requests far below it.
func TestPercentileWithinABucket(t *testing.T) {
	read := func(below int) time.Duration {
		var w window
		start := 100 * int64(time.Second)
		w.created = start - 60*int64(time.Second)
		for i := range 100 {
			d := 61 * time.Millisecond
			if i < below {
				d = 5 * time.Millisecond
			}
			w.add(start, 200, d, true)
		}
		var s snapshot
		w.read(start+1, &s)
		return s.traffic(0).P95
	}
	lo, hi := bucketBounds(bucketOf(61 * time.Millisecond))
	a, b := read(0), read(50)
	if !(b < a) || a < lo || a >= hi || b < lo {
		t.Errorf("p95 %s with every request at 61 ms, %s with half at 5 ms: want both in [%s, %s), the second lower", a, b, lo, hi)
	}
}
