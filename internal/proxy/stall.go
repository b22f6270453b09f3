package proxy

import (
	"fmt"
	"math"
	"time"
)

// A replica whose process is stopped or deadlocked still completes TCP
// handshakes (the kernel does), so a connect check passes and the engine
// says running; only the requests sent to it tell. The proxy counts, per
// backend, the attempts waiting for their response head and when it last
// heard one. A backend is hung when at least stallMinWaiting attempts wait,
// nothing was heard from it since they began, and that silence is longer
// than stallFloor and stallFactor times its usual latency: one long-poll
// (a single request) or a slow replica that keeps answering never is.
//
// A hung backend is taken out of rotation, never kept as a last resort
// (it answers no one), whatever the share of the pool that leaves. The
// requests waiting on it on the event loops are cut and, when idempotent,
// retried elsewhere, if another backend is in rotation: with none, an
// answer that is only slow may still come, so they wait on; they are cut
// when the backend is drained, for the replica that replaces it. The
// supervisor learns it (Manager.Hung, an eject Event with reason "hung")
// and decides whether to replace the replica. The ejection ends as an
// outlier's does, on probation, or at once when a request left waiting on
// it gets its answer (it was slow, not hung).
const (
	stallMinWaiting = 2
	stallFloor      = 3 * time.Second // past a long GC pause
	stallFactor     = 8
)

// ReasonHung is the Event.Reason of an ejection for hanging.
const ReasonHung = "hung"

// await and heard bracket an attempt's wait for its response head; unawait
// ends one that got none (failed, or its client left).
func (b *backend) await(now int64) {
	if b.awaiting.Add(1) == 1 {
		b.awaitFrom.Store(now)
	}
}

func (b *backend) heard(now int64) {
	b.awaiting.Add(-1)
	b.lastHead.Store(now)
}

func (b *backend) unawait() { b.awaiting.Add(-1) }

// stalled says how long b has been silent with at least stallMinWaiting
// attempts waiting on it, and its usual latency (undecayed: what it took
// when it answered); it is hung past max(stallFloor, stallFactor*usual).
func (b *backend) stalled(now int64) (silent, usual time.Duration, waiting int64) {
	waiting = b.awaiting.Load()
	if waiting < stallMinWaiting || b.inflight.Load() < stallMinWaiting {
		return 0, 0, waiting
	}
	silent = time.Duration(now - max(b.awaitFrom.Load(), b.lastHead.Load()))
	return silent, time.Duration(math.Float64frombits(b.ewma.Load())), waiting
}

// checkStalls ejects the pool's backends that hang (HTTP routes only: a
// TCP connection may rightly carry nothing for hours).
func (p *pool) checkStalls(now int64) {
	if !p.requests {
		return
	}
	var evs []Event
	var cut []*backend
	p.mu.Lock()
	for _, b := range p.all {
		if !b.ready || b.draining || b.out.hung {
			continue
		}
		silent, usual, waiting := b.stalled(now)
		if waiting < stallMinWaiting || silent <= max(stallFloor, stallFactor*usual) {
			continue
		}
		b.out.ejections = p.policy.priorEjections(b.out, now) + 1
		d := p.policy.period(b.out.ejections)
		b.out.until, b.out.hung = now+int64(d), true
		b.hungNow.Store(true)
		b.streak.Store(0)
		b.probation.Store(false)
		ev := p.event(EventEject, b, fmt.Sprintf("%d requests waiting, no answer for %s (its usual %s): hung; out of rotation for %s, its waiting requests retried elsewhere",
			waiting, silent.Round(time.Millisecond), usual.Round(time.Millisecond), d), d)
		ev.Reason = ReasonHung
		evs = append(evs, ev)
		cut = append(cut, b)
	}
	others := false
	if len(evs) > 0 {
		p.rebuild()
		others = len(p.set.Load().bs) > 0
	}
	p.mu.Unlock()
	for i, ev := range evs {
		cut[i].stats.ejections.Inc()
		p.emit(ev)
		if others {
			cutWaiting(cut[i])
		}
	}
}

// unhang readmits b, ejected for hanging, which has just answered: it was
// slow, not hung (a request left waiting on it got its answer).
func (p *pool) unhang(b *backend, now int64) {
	p.mu.Lock()
	if !b.out.hung {
		p.mu.Unlock()
		return
	}
	b.out.until, b.out.hung = 0, false
	b.hungNow.Store(false)
	b.out.readmitted = now
	b.probation.Store(true)
	p.rebuild()
	ev := p.event(EventReadmit, b, "it answered: slow, not hung; back in rotation on probation", 0)
	ev.Reason = ReasonHung
	p.mu.Unlock()
	p.emit(ev)
}

// hung reports whether a backend with id is out of rotation for hanging.
func (p *pool) hung(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.all {
		if b.id == id && b.out.hung {
			return true
		}
	}
	return false
}

// cutWaiting has every loop fail the attempts waiting for b's response
// head: b answers no one, and a request that may go elsewhere should not
// wait out its response timeout. (Requests served by fasthttp or net/http
// wait for theirs.)
func cutWaiting(b *backend) {
	l := loopsUp.Load()
	if l == nil {
		return
	}
	l.each(func(ls *loopState) {
		for cl := range ls.clients {
			if rq := &cl.rq; cl.busy && !cl.dead && rq.up != nil && rq.up.b == b && !rq.gotHead {
				cl.failed(rq.up, failedHung, errHung)
			}
		}
	})
}
