package proxy

import (
	"fmt"
	"net/http"
	"time"
)

// Kinds of Event.
const (
	EventEject   = "eject"   // a backend was taken out of rotation for failing
	EventReadmit = "readmit" // an ejected backend is back, on probation
)

// Event is a journal-worthy change in a backend's standing, handed to
// Config.OnEvent.
type Event struct {
	Kind     string // EventEject or EventReadmit
	Project  string
	Service  string
	Replica  string // "web/2"
	ID       string // the backend's container ID
	Message  string // the cause, for people: "5 consecutive 502 responses; ejected for 10s"
	Time     time.Time
	Duration time.Duration // for EventEject: how long the ejection lasts
	Reason   string        // for the breaker's events: error-ratio, latency, trial-passed
}

// failure is what went wrong with one attempt: an HTTP status of 500 or
// more from the backend, or one of the negative kinds.
type failure int32

const (
	failConnect failure = -1 // could not connect
	failTimeout failure = -2 // no response in time
	failBroken  failure = -3 // the connection broke before a response
	failHung    failure = -4 // cut while its backend hung (stall.go)
)

// plural names n failures of kind f for a message.
func (f failure) plural() string {
	switch f {
	case failConnect:
		return "connection failures"
	case failTimeout:
		return "timeouts"
	case failBroken:
		return "broken connections"
	case failHung:
		return "requests cut while it hung"
	}
	return fmt.Sprintf("%d responses", int(f))
}

// ejectPolicy is passive outlier detection's configuration.
type ejectPolicy struct {
	after int           // consecutive failures that eject a backend
	base  time.Duration // the n-th ejection in a row lasts n × base
	max   time.Duration // ... and at most this long
}

// outlier is what a pool remembers about one backend's ejections, as facts
// with their times (mono ns).
type outlier struct {
	ejections  int   // ejections in a row, without a healthy stretch between
	until      int64 // when the current ejection ends; 0: not ejected
	readmitted int64 // when the backend last came back
	hung       bool  // ejected for hanging (stall.go): not even a last resort
}

// shouldEject reports whether a failure ends the backend's turn: after
// the policy's number of consecutive failures, or at once on probation.
func (pol ejectPolicy) shouldEject(streak int, probation bool) bool {
	return probation || streak >= pol.after
}

// canEject reports whether one more of ready backends may be ejected when
// ejected of them already are: at most half of them, never the last one.
func canEject(ready, ejected int) bool {
	return (ejected+1)*2 <= ready
}

// period is how long the n-th ejection in a row lasts.
func (pol ejectPolicy) period(n int) time.Duration {
	return min(pol.base*time.Duration(n), pol.max)
}

// priorEjections is the count the next ejection builds on: a backend that
// stayed in rotation for the policy's maximum period since it came back
// starts again from zero.
func (pol ejectPolicy) priorEjections(o outlier, now int64) int {
	if o.readmitted != 0 && now-o.readmitted >= int64(pol.max) {
		return 0
	}
	return o.ejections
}

// answered accounts for an answer with status code from b, which took
// took: a 5xx is a failure (returned), and a 502, 503 or 504, which a
// replica says when it cannot work, also counts as slow.
func (p *pool) answered(b *backend, code int, now int64, took time.Duration) failure {
	switch {
	case code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		b.observe(now, max(took, failSample))
	case code >= 500:
		b.observe(now, took)
	default:
		b.observe(now, took)
		b.answered.Store(now + 1)
		p.succeeded(b)
		return 0
	}
	p.failed(b, failure(code), now)
	return failure(code)
}

// succeeded ends b's failure streak and its probation. The common case,
// nothing to end, only reads.
func (p *pool) succeeded(b *backend) {
	if b.streak.Load() != 0 {
		b.streak.Store(0)
	}
	if b.probation.Load() {
		b.probation.Store(false)
	}
}

// failed counts a failure of b and ejects it when the policy says so.
func (p *pool) failed(b *backend, f failure, now int64) {
	n := int(b.streak.Add(1))
	if n == 1 {
		b.firstFail.Store(int32(f))
		b.mixedFail.Store(false)
	} else if int32(f) != b.firstFail.Load() {
		b.mixedFail.Store(true)
	}
	probation := b.probation.Load()
	if !p.policy.shouldEject(n, probation) {
		return
	}
	if ev, ok := p.eject(b, f, n, probation, now); ok {
		b.stats.ejections.Inc()
		p.emit(ev)
	}
}

// eject takes b out of rotation if it is still in it and the pool can
// spare it.
func (p *pool) eject(b *backend, f failure, streak int, probation bool, now int64) (Event, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.out.until != 0 || !b.ready || b.draining || !p.has(b) {
		return Event{}, false
	}
	ready, ejected := p.inRotation()
	// At most half are ejected for failing requests, which may be the
	// callers' fault; a replica that refuses connections is out regardless,
	// as long as one other stays in rotation.
	if !canEject(ready, ejected) && !(f == failConnect && !b.mixedFail.Load() && ready-ejected > 1) {
		return Event{}, false
	}
	b.out.ejections = p.policy.priorEjections(b.out, now) + 1
	d := p.policy.period(b.out.ejections)
	b.out.until = now + int64(d)
	b.streak.Store(0)
	b.probation.Store(false)
	p.rebuild()
	var why string
	switch {
	case probation:
		why = "failed on probation (" + failure(b.firstFail.Load()).plural() + ")"
	case b.mixedFail.Load():
		why = fmt.Sprintf("%d consecutive failures, the last %s", streak, f.plural())
	default:
		why = fmt.Sprintf("%d consecutive %s", streak, f.plural())
	}
	return p.event(EventEject, b, fmt.Sprintf("%s; ejected for %s", why, d), d), true
}

// readmit brings back the backends whose ejection has ended, on probation.
func (p *pool) readmit(now int64) {
	p.mu.Lock()
	var evs []Event
	best := p.bestEstimate(now)
	for _, b := range p.all {
		if b.out.until == 0 || b.out.until > now {
			continue
		}
		d := p.policy.period(b.out.ejections)
		b.out.until, b.out.hung = 0, false
		b.hungNow.Store(false)
		b.out.readmitted = now
		b.streak.Store(0)
		b.probation.Store(true)
		b.reset(now, best)
		evs = append(evs, p.event(EventReadmit, b,
			fmt.Sprintf("ejection of %s ended; on probation, the next failure ejects it again", d), 0))
	}
	p.rebuild()
	p.mu.Unlock()
	for _, ev := range evs {
		p.emit(ev)
	}
}

// has reports whether b is one of the pool's current backends. Call with
// mu held.
func (p *pool) has(b *backend) bool {
	for _, x := range p.all {
		if x == b {
			return true
		}
	}
	return false
}

func (p *pool) event(kind string, b *backend, msg string, d time.Duration) Event {
	return Event{Kind: kind, Project: p.project, Service: p.service, Replica: b.replica, ID: b.id,
		Message: msg, Time: p.clk.Now(), Duration: d}
}

// emit hands ev to Config.OnEvent; a panic there is logged, not spread to
// the request or the housekeeping that noticed the change.
func (p *pool) emit(ev Event) {
	if p.onEvent == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("proxy: OnEvent panicked", "event", ev.Kind, "replica", ev.Replica, "panic", r)
		}
	}()
	p.onEvent(ev)
}
