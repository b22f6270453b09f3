package breaker

import (
	"fmt"
	"time"
)

// Config shapes a Breaker; zero fields take the defaults of x-tend breaker.
type Config struct {
	ErrorRatio  float64       // of failed requests (5xx, connection failures); default 0.5
	MinRequests int           // within Window, before it may open; default 20
	Window      time.Duration // default 10s
	Latency     time.Duration // a p95 above it opens it too; 0: off
	Open        time.Duration // fail fast this long before half-open; default 5s
	Trials      int           // trial requests that must succeed to close; default 3
}

// State is where a breaker stands.
type State uint8

const (
	Closed State = iota
	Open
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "closed"
}

// Transition is a change worth journaling.
type Transition struct {
	To      State // Open or Closed; the zero Transition is none
	Reason  string
	Message string
}

// Ticket is one request let through; hand it back to Record or Abandon.
type Ticket struct {
	start int64
	trial bool
	ok    bool
}

const (
	buckets  = 10 // the window in tenths
	inflight = 64 // start-time slots of requests in flight, a bucket wide each
	slowP    = 0.05
)

type bucket struct {
	id                int64 // which bucket of time the counts are for
	n, failed, slowed int
}

type startSlot struct {
	id int64
	n  int
}

// Breaker is one service's request breaker.
type Breaker struct {
	cfg    Config
	width  int64 // ns per bucket
	state  State
	opened int64 // when it last opened

	win   [buckets]bucket
	start [inflight]startSlot // requests in flight by when they started

	trials     int   // trials in flight (half-open)
	trialsOK   int   // trials that succeeded
	trialSince int64 // when the oldest trial in flight started
}

// New returns a closed breaker.
func New(c Config) *Breaker {
	if c.ErrorRatio <= 0 {
		c.ErrorRatio = 0.5
	}
	if c.MinRequests <= 0 {
		c.MinRequests = 20
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.Open <= 0 {
		c.Open = 5 * time.Second
	}
	if c.Trials <= 0 {
		c.Trials = 3
	}
	return &Breaker{cfg: c, width: max(int64(c.Window)/buckets, 1)}
}

// Config is the breaker's configuration, defaults filled in.
func (b *Breaker) Config() Config { return b.cfg }

// State is where the breaker stands (for metrics and tests).
func (b *Breaker) State() State { return b.state }

// Allow decides whether a request arriving at now goes to the service. It
// may open the breaker (requests hanging past Latency), which it reports.
func (b *Breaker) Allow(now int64) (Ticket, bool, Transition) {
	switch b.state {
	case Closed:
		// Only requests hanging past Latency can open it here; answers
		// are judged as they end (Record).
		if b.cfg.Latency > 0 {
			if tr, open := b.judge(now); open {
				return Ticket{}, false, tr
			}
		}
		b.begin(now)
		return Ticket{start: now, ok: true}, true, Transition{}
	case Open:
		if now-b.opened < int64(b.cfg.Open) {
			return Ticket{}, false, Transition{}
		}
		b.state, b.trials, b.trialsOK = HalfOpen, 0, 0
	}
	// Half-open: a few trials at a time; one that hangs reopens it.
	if b.trials > 0 && now-b.trialSince > int64(b.trialLimit()) {
		b.reopen(now)
		return Ticket{}, false, Transition{}
	}
	if b.trials+b.trialsOK >= b.cfg.Trials {
		return Ticket{}, false, Transition{}
	}
	if b.trials == 0 {
		b.trialSince = now
	}
	b.trials++
	return Ticket{start: now, trial: true, ok: true}, true, Transition{}
}

// trialLimit is how long a trial may take before it counts as hanging.
func (b *Breaker) trialLimit() time.Duration {
	if b.cfg.Latency > 0 {
		return b.cfg.Latency
	}
	return b.cfg.Open
}

// Record is a request let through that ended at now; failed: a 5xx or a
// connection failure; took: how long the replica that answered took. That,
// not the request's whole time, is the service's latency: time held waiting
// for a replica to be ready, or on one found hung and left, is the proxy's
// and ended with it (bench/chaos, 2026-12-08 00:10 UTC: requests held while
// a hung replica was replaced opened the breaker as its replacement came
// up, and callers got the fallback for 3 s from a healthy service).
func (b *Breaker) Record(now int64, t Ticket, failed bool, took time.Duration) Transition {
	if !t.ok {
		return Transition{}
	}
	slow := b.cfg.Latency > 0 && took > b.cfg.Latency
	if t.trial {
		return b.trialEnded(now, failed || slow)
	}
	b.end(t.start)
	bk := b.bucket(now)
	bk.n++
	if failed {
		bk.failed++
	}
	if slow {
		bk.slowed++
	}
	if b.state != Closed || !failed && !slow {
		return Transition{} // a success cannot be what opens it: judged at the next failure
	}
	tr, _ := b.judge(now)
	return tr
}

// Abandon is a request let through whose client left: its time counts if
// it was already slow, its outcome does not.
func (b *Breaker) Abandon(now int64, t Ticket) Transition {
	if !t.ok {
		return Transition{}
	}
	if d := time.Duration(now - t.start); b.cfg.Latency > 0 && d > b.cfg.Latency {
		return b.Record(now, t, false, d)
	}
	if t.trial {
		b.trials = max(b.trials-1, 0)
		return Transition{}
	}
	b.end(t.start)
	return Transition{}
}

func (b *Breaker) trialEnded(now int64, failed bool) Transition {
	if b.state != HalfOpen {
		return Transition{}
	}
	b.trials = max(b.trials-1, 0)
	if failed {
		b.reopen(now)
		return Transition{}
	}
	b.trialsOK++
	if b.trialsOK < b.cfg.Trials {
		return Transition{}
	}
	b.state = Closed
	b.win, b.start = [buckets]bucket{}, [inflight]startSlot{} // requests from before the close are forgotten
	return Transition{To: Closed, Reason: "trial-passed",
		Message: fmt.Sprintf("%d trial requests succeeded after %s open", b.trialsOK, time.Duration(now-b.opened).Round(time.Millisecond))}
}

func (b *Breaker) reopen(now int64) {
	b.state, b.opened, b.trials, b.trialsOK = Open, now, 0, 0
}

// judge opens a closed breaker whose window shows too many failures or
// slow requests, counting requests in flight past Latency as slow.
func (b *Breaker) judge(now int64) (Transition, bool) {
	n, failed, slowed := b.totals(now)
	stalled := b.stalled(now)
	total := n + stalled
	if total < b.cfg.MinRequests {
		return Transition{}, false
	}
	var tr Transition
	switch {
	case n >= b.cfg.MinRequests && float64(failed) >= b.cfg.ErrorRatio*float64(n):
		tr = Transition{To: Open, Reason: "error-ratio",
			Message: fmt.Sprintf("%d of %d requests failed within %s (limit %.0f%%)", failed, n, b.cfg.Window, 100*b.cfg.ErrorRatio)}
	case b.cfg.Latency > 0 && float64(slowed+stalled) > slowP*float64(total):
		tr = Transition{To: Open, Reason: "latency",
			Message: fmt.Sprintf("p95 over %s: %d of %d requests within %s slower (%d still waiting)", b.cfg.Latency, slowed+stalled, total, b.cfg.Window, stalled)}
	default:
		return Transition{}, false
	}
	b.reopen(now)
	tr.Message += fmt.Sprintf("; callers get the fallback for %s, then trial requests", b.cfg.Open)
	return tr, true
}

func (b *Breaker) totals(now int64) (n, failed, slowed int) {
	cur := now / b.width
	for _, bk := range b.win {
		if bk.id > cur-buckets && bk.id <= cur {
			n, failed, slowed = n+bk.n, failed+bk.failed, slowed+bk.slowed
		}
	}
	return n, failed, slowed
}

func (b *Breaker) bucket(now int64) *bucket {
	id := now / b.width
	bk := &b.win[id%buckets]
	if bk.id != id {
		*bk = bucket{id: id}
	}
	return bk
}

func (b *Breaker) begin(now int64) {
	id := now / b.width
	s := &b.start[id%inflight]
	if s.id != id {
		*s = startSlot{id: id}
	}
	s.n++
}

func (b *Breaker) end(start int64) {
	id := start / b.width
	if s := &b.start[id%inflight]; s.id == id && s.n > 0 {
		s.n--
	}
}

// stalled counts the requests in flight that started more than Latency ago.
func (b *Breaker) stalled(now int64) int {
	if b.cfg.Latency <= 0 {
		return 0
	}
	cur, n := now/b.width, 0
	limit := (now - int64(b.cfg.Latency)) / b.width // slots wholly before it
	for _, s := range b.start {
		if s.n > 0 && s.id < limit && s.id > cur-inflight {
			n += s.n
		}
	}
	return n
}
