package proxy

import (
	"time"

	"github.com/tend-sh/tend/internal/breaker"
)

// exchange is one HTTP request's life in the proxy, as a state machine: it
// is fed events (start, an attempt answered or failed, the client gone, a
// wait over, a streamed answer finished), each with the time, and returns
// what the driver must do next (send to a backend, wait, answer with tend's
// own error, deliver the backend's answer). It does no I/O and reads no
// clock; the drivers (the event loops, fasthttp's handler, the net/http
// RoundTripper) carry bytes, turn what happened into events (classify) and
// do what it decides.
//
// The rules (doc.go, Failures) live here once: which failures are retried
// and where, the retry budget, the hold, the pause after refusals
// everywhere, a stale reused connection resent on a new one. So does the
// bookkeeping, once per attempt: the backend's in-flight count, its
// latency sample and failure streak (outcome), and the statistics
// (settle).
//
// An exchange is used by one goroutine at a time; the pool it calls into
// is safe for concurrent use.
type exchange struct {
	p          *pool
	idempotent bool // the method may be sent twice
	replayable bool // the body is kept, so the request can be sent again

	began int64 // mono ns when the request came
	tries int   // attempts made (stale resends not counted)
	tried triedSet

	b      *backend // the attempt in flight, or the answer being streamed; nil between
	sentAt int64    // when the attempt in flight was sent
	fresh  bool     // it was sent on a new connection by this machine's decision
	code   int      // the status of the answer being streamed; 0 while none

	wait  waitFor
	epoch uint64  // the pool's, when the event being handled came
	until int64   // the end of a pause (connectPause)
	f     failure // the failure a retry waits after
	fcode int     // the answer for it when the wait ends with no backend

	ticket breaker.Ticket // the request breaker's, for its outcome
}

// waitFor is what a waiting exchange waits for.
type waitFor uint8

const (
	waitNone  waitFor = iota
	waitFirst         // any backend: none could take the request yet
	waitOther         // a backend not tried yet, for a retry
	waitPause         // every backend tried refused: until a pause ends, then any backend
)

// kind is how an attempt failed, as the driver saw it (classify).
type kind uint8

const (
	failedConnect kind = iota + 1 // could not connect
	failedWrite                   // could not write the request: nothing reached the backend
	failedBroken                  // the connection broke after the request was sent, before an answer
	failedLate                    // no response head within the response timeout
	failedBad                     // an answer that could not be parsed, or was cut short
	failedHung                    // cut while waiting: its backend hangs (stall.go)
)

// step is what a decision tells the driver to do.
type step uint8

const (
	stepSend    step = iota + 1 // send the request to backend b (on a new connection if fresh)
	stepWait                    // come back with woke at until, or earlier when the pool changes
	stepAnswer                  // answer the client with tend's own error, code
	stepDeliver                 // the backend's answer stands: pass it on
	stepDone                    // nothing more: the client left
)

// decision is what the driver must do next.
type decision struct {
	step  step
	b     *backend // stepSend
	fresh bool     // stepSend: on a new connection, or one known open (connTo), not one maybe stale
	until int64    // stepWait: mono ns
	epoch uint64   // stepWait: the pool's epoch it saw; a change since ends the wait
	code  int      // stepAnswer
	fb    *canned  // stepAnswer: the fallback to give instead of tend's error (isolation.go)
}

// newExchange is an exchange of a request on p's route.
func newExchange(p *pool, idempotent, replayable bool) exchange {
	return exchange{p: p, idempotent: idempotent, replayable: replayable}
}

// resendable reports whether a stale parked connection would cost the
// request nothing but a new one (failed says when).
func (x *exchange) resendable() bool { return x.idempotent && x.replayable }

// start is the request come in at now: to a backend, or a wait for one.
func (x *exchange) start(now int64) decision {
	x.epoch = x.p.epoch.Load()
	x.began, x.tries, x.b, x.wait, x.code = now, 0, nil, waitNone, 0
	x.tried.reset()
	if fb := x.p.shut(); fb != nil {
		return x.fallback(now, fb)
	}
	t, fb, tr := x.p.svc.guard.allow(now)
	x.p.report(tr)
	if fb != nil {
		return x.fallback(now, fb)
	}
	x.ticket = t
	if b := x.p.pick(now); b != nil {
		return x.attempt(now, b)
	}
	return x.hold(now, waitFirst)
}

// answered is the attempt in flight answered with code: its head in and,
// unless streaming, the whole answer. A 502 or 503 to a request that may
// be sent again goes to another backend if one is ready now and the
// budget allows; otherwise the answer stands. A streamed answer that
// stands stays the backend's until finished.
func (x *exchange) answered(now int64, code int, streaming bool) decision {
	b := x.b
	if b == nil {
		return decision{step: stepDone}
	}
	b.heard(now)
	if b.hungNow.Load() {
		x.p.unhang(b, now)
	}
	took := time.Duration(now - x.sentAt)
	f := x.outcome(now, b, code, 0, took)
	if f != 0 && x.replayable && mayRetry(f, x.idempotent, x.tries) {
		if next := x.p.pickExcept(now, x.tried.list()...); next != nil && x.p.svc.takeRetry(now, false) {
			x.settle(now, code, took, true)
			return x.attempt(now, next)
		}
	}
	if streaming {
		x.code = code
	} else {
		x.settle(now, code, took, true)
	}
	return decision{step: stepDeliver}
}

// failed is the attempt in flight failed with k; reused: it was on a
// connection that had served an exchange before.
func (x *exchange) failed(now int64, k kind, reused bool) decision {
	b := x.b
	if b == nil {
		return decision{step: stepDone}
	}
	b.unawait()
	x.epoch = x.p.epoch.Load()
	if reused && !x.fresh && x.replayable && (k == failedWrite || k == failedBroken && x.idempotent) {
		// The backend may have closed the connection while it was idle:
		// no failure, and once more on a new connection (pool.afterStale
		// says where). A new connection cannot be stale: one such resend
		// per attempt.
		x.b = nil
		b.end()
		return x.send(now, x.p.afterStale(now, b, x.tried.list()), true)
	}
	f, code := failBroken, 502
	switch k {
	case failedConnect:
		f = failConnect
	case failedWrite:
		if x.replayable { // a streamed body may have been partly sent
			f = failConnect // the request reached no one
		}
	case failedLate:
		f, code = failTimeout, 504
	case failedHung:
		f, code = failHung, 504
	}
	took := time.Duration(now - x.sentAt)
	x.outcome(now, b, code, f, took)
	x.settle(now, code, took, true)
	return x.afterFailure(now, f, code)
}

// clientGone is the client leaving (or its route cut): whatever is under
// way is dropped, which is no backend's fault.
func (x *exchange) clientGone(now int64) decision {
	x.wait = waitNone
	x.p.report(x.p.svc.guard.abandon(now, x.ticket))
	x.ticket = breaker.Ticket{}
	if x.b == nil {
		return decision{step: stepDone}
	}
	if x.code != 0 {
		x.finished(now, false)
		return decision{step: stepDone}
	}
	x.b.unawait() // it was waiting for the head
	x.settle(now, statusClientGone, time.Duration(now-x.sentAt), false)
	return decision{step: stepDone}
}

// finished is the end of a streamed answer that was delivered; complete:
// it was passed on whole (an upgraded connection: it closed).
func (x *exchange) finished(now int64, complete bool) {
	if x.b == nil {
		return
	}
	code := x.code
	if !complete {
		code = statusClientGone // cut short: by the client or by the backend
	}
	x.settle(now, code, time.Duration(now-x.sentAt), x.code != 101)
}

// woke is the driver back after a stepWait: at its until, or earlier
// because the pool changed.
func (x *exchange) woke(now int64) decision {
	p := x.p
	x.epoch = p.epoch.Load()
	switch x.wait {
	case waitFirst:
		if b := p.pick(now); b != nil {
			x.wait = waitNone
			return x.attempt(now, b)
		}
		return x.hold(now, waitFirst)
	case waitOther:
		if b := p.pickExcept(now, x.tried.list()...); b != nil {
			x.wait = waitNone
			return x.retry(now, b, x.f)
		}
		return x.hold(now, waitOther)
	case waitPause:
		if now < x.until {
			return decision{step: stepWait, until: x.until, epoch: x.epoch}
		}
		var b *backend
		if x.tries < maxAttempts {
			b = p.pickExcept(now, x.tried.list()...)
		}
		if b == nil {
			// Every replica tried refused: any of them, from the start.
			if b = p.pick(now); b != nil {
				x.tries = 0
				x.tried.reset()
			}
		}
		if b != nil {
			x.wait = waitNone
			return x.retry(now, b, failConnect)
		}
		return x.hold(now, waitPause)
	}
	return decision{step: stepDone}
}

// afterFailure decides what follows a failed attempt (f, answered as code
// when nothing else can be done): a retry on a backend not tried yet; a
// wait for one within the hold; after refusals everywhere, a pause; or
// the answer.
func (x *exchange) afterFailure(now int64, f failure, code int) decision {
	x.f, x.fcode = f, code
	if !x.replayable {
		return x.answer(code)
	}
	if mayRetry(f, x.idempotent, x.tries) {
		if b := x.p.pickExcept(now, x.tried.list()...); b != nil {
			return x.retry(now, b, f)
		}
		if f != failConnect {
			return x.hold(now, waitOther)
		}
	} else if f != failConnect {
		return x.answer(code)
	}
	// Every backend tried refused the connection (all restarting at once,
	// say): the request reached none, so it is tried again after a pause.
	if time.Duration(now-x.began)+connectPause >= x.p.holdNow() {
		return x.answer(code)
	}
	x.wait, x.until = waitPause, now+int64(connectPause)
	return decision{step: stepWait, until: x.until, epoch: x.epoch}
}

// connectPause is the wait before a request that no replica accepted is
// tried again (see Config.Hold): a replica restarted in place is back in
// tens of milliseconds.
const connectPause = 25 * time.Millisecond

// maxAttempts bounds the replicas one request is sent to: a retry after a
// failure that allows it, and one more only if that retry could not even
// connect (two replicas down at once), which costs the replicas nothing.
const maxAttempts = 3

// hold waits for w within the request's hold, or gives up once it is over.
func (x *exchange) hold(now int64, w waitFor) decision {
	if fb := x.p.shut(); fb != nil {
		return x.fallback(now, fb) // quarantined meanwhile: no more waiting
	}
	deadline := x.began + int64(x.p.holdNow())
	if now >= deadline {
		x.wait = waitNone
		if w == waitFirst {
			x.p.svc.none.record(now, 503, 0, false)
			return x.answer(503)
		}
		return x.answer(x.fcode)
	}
	x.wait = w
	until := deadline
	if t := x.p.readmitAt.Load(); t > now && t < until {
		until = t // an ejection ends: a backend is back
	}
	return decision{step: stepWait, until: until, epoch: x.epoch}
}

// retry sends the request to b after a failure f, if the budget allows.
func (x *exchange) retry(now int64, b *backend, f failure) decision {
	if !x.p.svc.takeRetry(now, f == failConnect) {
		return x.answer(x.fcode)
	}
	return x.attempt(now, b)
}

// attempt sends the request to b as a new attempt: a body sent once goes
// on a new connection, since a parked one may be stale.
func (x *exchange) attempt(now int64, b *backend) decision {
	x.tries++
	return x.send(now, b, !x.replayable)
}

func (x *exchange) send(now int64, b *backend, fresh bool) decision {
	x.tried.add(b)
	b.begin(now)
	b.await(now)
	x.b, x.sentAt, x.fresh, x.code = b, now, fresh, 0
	return decision{step: stepSend, b: b, fresh: fresh}
}

// fallback answers with fb at once: the service is isolated or its
// breaker open. It counts as a request no replica took.
func (x *exchange) fallback(now int64, fb *canned) decision {
	x.wait = waitNone
	x.p.svc.none.record(now, fb.code, 0, false)
	return decision{step: stepAnswer, code: fb.code, fb: fb}
}

func (x *exchange) answer(code int) decision {
	x.wait = waitNone
	return decision{step: stepAnswer, code: code}
}

// outcome is where every attempt's result passes, once: an answer's
// status (f 0), or a failure f with the status the client would get. It
// updates the backend's latency estimate and failure streak (which may
// eject it), and returns the failure the answer is, if any. A request
// breaker or a rollout gate belongs here.
func (x *exchange) outcome(now int64, b *backend, code int, f failure, took time.Duration) failure {
	x.p.report(x.p.svc.guard.record(now, x.ticket, f != 0 || code >= 500, took))
	x.ticket = breaker.Ticket{} // a retry's outcome counts once, with the request's
	if f == 0 {
		return x.p.answered(b, code, now, took)
	}
	b.observe(now, max(took, failSample))
	x.p.failed(b, f, now)
	return f
}

// settle ends the attempt's part in the backend's load and counts it in
// the statistics, once: code as the client's answer, timed when its
// latency is one.
func (x *exchange) settle(now int64, code int, took time.Duration, timed bool) {
	b := x.b
	x.b, x.code = nil, 0
	b.end()
	b.stats.record(now, code, took, timed)
}

// triedSet is the backends a request was sent to, a stale resend's
// (pool.afterStale) included: at most one per attempt.
type triedSet struct {
	bs [2 * maxAttempts]*backend
	n  int
}

func (t *triedSet) add(b *backend)   { t.bs[t.n] = b; t.n++ }
func (t *triedSet) list() []*backend { return t.bs[:t.n] }
func (t *triedSet) reset()           { t.n = 0 }
