package breaker

import (
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

// run sends n requests at now, each ending after took with failed.
func run(b *Breaker, now int64, n int, took time.Duration, failed bool) (sent int, trs []Transition) {
	for range n {
		t, ok, tr := b.Allow(now)
		if tr.To != 0 || tr.Reason != "" {
			trs = append(trs, tr)
		}
		if !ok {
			continue
		}
		sent++
		if tr := b.Record(now+int64(took), t, failed, took); tr.Reason != "" {
			trs = append(trs, tr)
		}
	}
	return sent, trs
}

func TestOpensOnErrorRatio(t *testing.T) {
	cases := []struct {
		name   string
		ok     int
		failed int
		open   bool
	}{
		{"too little traffic to judge, all failing", 0, 19, false},
		{"enough traffic, half failing", 10, 10, true},
		{"enough traffic, few failing", 18, 2, false},
		{"enough traffic, all failing", 0, 20, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := New(Config{})
			now := 1000 * ms
			run(b, now, c.ok, time.Millisecond, false)
			_, trs := run(b, now, c.failed, time.Millisecond, true)
			if got := b.State() == Open; got != c.open {
				t.Fatalf("open = %v, want %v (transitions %v)", got, c.open, trs)
			}
			if c.open && (len(trs) == 0 || trs[0].Reason != "error-ratio") {
				t.Errorf("transitions = %v, want one error-ratio", trs)
			}
		})
	}
}

func TestOldFailuresLeaveTheWindow(t *testing.T) {
	b := New(Config{})
	run(b, 0, 15, 0, true)
	run(b, int64(11*time.Second), 10, 0, false) // the failures are out of the window
	run(b, int64(11*time.Second), 5, 0, true)
	if b.State() != Closed {
		t.Fatalf("state = %v, want closed: 5 of 15 failed within the window", b.State())
	}
}

// TestStory: opens, fails fast, half-open trials fail and reopen, then pass and close.
func TestStory(t *testing.T) {
	b := New(Config{Open: time.Second})
	now := int64(0)
	_, trs := run(b, now, 20, 10*time.Millisecond, true)
	if b.State() != Open || len(trs) != 1 {
		t.Fatalf("state %v transitions %v, want open once", b.State(), trs)
	}
	if sent, _ := run(b, now+500*ms, 10, 0, false); sent != 0 {
		t.Fatalf("sent %d while open, want 0", sent)
	}
	// Half-open: one trial fails, open again.
	now += 1100 * ms
	tk, ok, _ := b.Allow(now)
	if !ok || b.State() != HalfOpen {
		t.Fatalf("after Open: ok %v state %v, want a trial", ok, b.State())
	}
	b.Record(now+ms, tk, true, time.Millisecond)
	if b.State() != Open {
		t.Fatalf("state = %v after a failed trial, want open", b.State())
	}
	// Only three trials at a time; three successes close it.
	now += 1100 * ms
	var tks []Ticket
	for range 5 {
		if tk, ok, _ := b.Allow(now); ok {
			tks = append(tks, tk)
		}
	}
	if len(tks) != 3 {
		t.Fatalf("trials let through = %d, want 3", len(tks))
	}
	var last Transition
	for _, tk := range tks {
		last = b.Record(now+ms, tk, false, time.Millisecond)
	}
	if b.State() != Closed || last.To != Closed || last.Reason != "trial-passed" {
		t.Fatalf("state %v, last transition %+v, want closed by trial-passed", b.State(), last)
	}
}

// TestHangingRequestsOpen: with a latency limit, requests still in flight
// past it open the breaker before any of them ends.
func TestHangingRequestsOpen(t *testing.T) {
	b := New(Config{Latency: 100 * time.Millisecond})
	now := int64(0)
	for range 20 {
		if _, ok, _ := b.Allow(now); !ok {
			t.Fatal("refused before any judgement")
		}
	}
	// Not past the limit yet: still closed.
	if _, ok, _ := b.Allow(now + 50*ms); !ok {
		t.Fatal("opened before the requests were late")
	}
	_, ok, tr := b.Allow(now + 1500*ms)
	if ok || tr.Reason != "latency" {
		t.Fatalf("ok %v transition %+v, want refused with a latency transition", ok, tr)
	}
	// A hanging trial reopens it.
	now += 1500*ms + int64(6*time.Second)
	if _, ok, _ := b.Allow(now); !ok || b.State() != HalfOpen {
		t.Fatalf("want a trial, state %v", b.State())
	}
	if _, ok, _ := b.Allow(now + 200*ms); ok || b.State() != Open {
		t.Fatalf("a hanging trial: ok %v state %v, want reopened", ok, b.State())
	}
}

func TestSlowCompletedRequestsOpen(t *testing.T) {
	b := New(Config{Latency: 100 * time.Millisecond})
	run(b, 0, 18, time.Millisecond, false)
	_, trs := run(b, 0, 2, 300*time.Millisecond, false)
	if b.State() != Open || len(trs) == 0 || trs[0].Reason != "latency" {
		t.Fatalf("state %v transitions %v, want open on latency (2 of 20 over 100ms: p95 over it)", b.State(), trs)
	}
}

// A request's time waiting for a replica is not the service's latency:
// requests held long and then answered fast do not open the breaker; the
// same requests answered slowly do.
func TestLatencyIsTheAnswersNotTheHolds(t *testing.T) {
	for _, tc := range []struct {
		name string
		took time.Duration // of the replica that answered
		open bool
	}{{"held 2 s, answered in 2 ms", 2 * time.Millisecond, false}, {"held 2 s, answered in 600 ms", 600 * time.Millisecond, true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(Config{Latency: 500 * time.Millisecond, Open: time.Second})
			now := int64(time.Hour)
			var opened bool
			for range 40 {
				tk, ok, _ := b.Allow(now)
				if !ok {
					opened = true
					break
				}
				if tr := b.Record(now+int64(2*time.Second), tk, false, tc.took); tr.To == Open {
					opened = true
				}
				now += int64(10 * time.Millisecond)
			}
			if opened != tc.open {
				t.Fatalf("opened %v, want %v", opened, tc.open)
			}
		})
	}
}
