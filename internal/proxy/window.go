package proxy

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// windowSpan is the number of seconds Stats and the retry budget look
	// back over, the current one included.
	windowSpan = 10
	// ringSize is the number of per-second slots kept: a power of two
	// larger than windowSpan, so the slot being filled is never one read.
	ringSize = 16
	// nBuckets log-scale latency buckets, four per power of two of
	// microseconds, cover 0 to 2^28 µs (about 4.5 minutes), each within
	// 12.5 % of its midpoint.
	nBuckets = 108
)

// bucketOf is the latency bucket of d: its bit length and the two bits
// after the leading one, so no float maths on the hot path.
func bucketOf(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < 4 {
		return int(us)
	}
	e := bits.Len64(us)
	i := (e-2)*4 + int((us>>(e-3))&3)
	return min(i, nBuckets-1)
}

// bucketBounds is the range [lo, hi) of bucket i.
func bucketBounds(i int) (lo, hi time.Duration) {
	if i < 4 {
		return time.Duration(i) * time.Microsecond, time.Duration(i+1) * time.Microsecond
	}
	shift := i/4 - 1
	sub := uint64(i % 4)
	return time.Duration((4+sub)<<shift) * time.Microsecond, time.Duration((5+sub)<<shift) * time.Microsecond
}

// slot holds one second of traffic.
type slot struct {
	sec   atomic.Int64 // which second (mono) the counts belong to
	n     atomic.Uint64
	codes [6]atomic.Uint64 // by status class: codes[2] counts 2xx; [0] no status
	lat   [nBuckets]atomic.Uint64
}

// window is a ring of per-second slots: writers only add to atomics; the
// mutex is taken once a second, to clear a slot for its new second.
type window struct {
	created int64 // mono ns
	mu      sync.Mutex
	slots   [ringSize]slot
}

// current is the slot for now, cleared if it still holds an older second,
// or nil for a writer so late that its second is gone.
func (w *window) current(now int64) *slot {
	sec := now / int64(time.Second)
	s := &w.slots[sec&(ringSize-1)]
	if st := s.sec.Load(); st != sec {
		if st > sec {
			return nil
		}
		w.mu.Lock()
		if s.sec.Load() < sec {
			s.n.Store(0)
			for i := range s.codes {
				s.codes[i].Store(0)
			}
			for i := range s.lat {
				s.lat[i].Store(0)
			}
			s.sec.Store(sec)
		}
		w.mu.Unlock()
	}
	return s
}

// add counts one request (or connection) that ended now with status code
// (0: none) and, when timed, took d.
func (w *window) add(now int64, code int, d time.Duration, timed bool) {
	s := w.current(now)
	if s == nil {
		return
	}
	s.n.Add(1)
	s.codes[min(max(code/100, 0), 5)].Add(1)
	if timed {
		s.lat[bucketOf(d)].Add(1)
	}
}

// count is the number of requests over the window ending now.
func (w *window) count(now int64) uint64 {
	cur := now / int64(time.Second)
	var n uint64
	for k := int64(0); k < windowSpan; k++ {
		s := &w.slots[(cur-k)&(ringSize-1)]
		if s.sec.Load() == cur-k {
			n += s.n.Load()
		}
	}
	return n
}

// snapshot is a window's counts summed over its span.
type snapshot struct {
	n     uint64
	codes [6]uint64
	lat   [nBuckets]uint64
	span  time.Duration // the time the counts cover
}

func (w *window) read(now int64, into *snapshot) { w.readSpan(now, windowSpan, into) }

// readSpan sums the last span seconds, the current one included.
func (w *window) readSpan(now, span int64, into *snapshot) {
	cur := now / int64(time.Second)
	for k := int64(0); k < span; k++ {
		s := &w.slots[(cur-k)&(ringSize-1)]
		if s.sec.Load() != cur-k {
			continue
		}
		into.n += s.n.Load()
		for i := range s.codes {
			into.codes[i] += s.codes[i].Load()
		}
		for i := range s.lat {
			into.lat[i] += s.lat[i].Load()
		}
	}
	from := max(w.created, (cur-span+1)*int64(time.Second))
	into.span = max(into.span, time.Duration(now-from))
}

// percentile is the latency below which fraction q of the timed requests
// fell, as the midpoint of its bucket; 0 with no timed requests.
func (s *snapshot) percentile(q float64) time.Duration {
	var total uint64
	for _, c := range s.lat {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = min(max(rank, 1), total)
	// Within its bucket the rank is placed as if the bucket's requests were
	// spread evenly over it: two distributions whose p95 falls in one bucket
	// (buckets are ±12.5 % wide) still read apart, so the autoscaler's
	// no-effect rule does not take a fall within a bucket for no change.
	var seen uint64
	for i, c := range s.lat {
		if seen+c >= rank {
			lo, hi := bucketBounds(i)
			return lo + time.Duration(float64(hi-lo)*(float64(rank-seen)-0.5)/float64(c))
		}
		seen += c
	}
	return 0
}

// traffic turns the snapshot into the figures Stats reports.
func (s *snapshot) traffic(inflight int64) Traffic {
	t := Traffic{InFlight: inflight, P50: s.percentile(0.50), P95: s.percentile(0.95), P99: s.percentile(0.99)}
	if s.n > 0 {
		t.Rate = float64(s.n) / max(s.span, time.Second).Seconds()
	}
	for class := 1; class < len(s.codes); class++ {
		if s.codes[class] == 0 {
			continue
		}
		if t.Codes == nil {
			t.Codes = make(map[string]uint64)
		}
		t.Codes[string(rune('0'+class))+"xx"] = s.codes[class]
	}
	return t
}
