package proxy

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Balancing constants; doc.go explains the choice.
const (
	// ewmaAlpha is the weight of a new latency sample.
	ewmaAlpha = 0.3
	// ewmaHalfLife is how fast an idle backend's latency estimate decays
	// toward zero, so a backend that lost every comparison gets a request
	// again and its estimate is refreshed.
	ewmaHalfLife = 5 * time.Second
	// slowFactor: a backend whose turn it is gives the request to another
	// when its load is more than slowFactor times the other's, plus
	// loadSlack (which keeps two near-zero estimates from comparing as far
	// apart).
	slowFactor = 2
	loadSlack  = 50 * time.Microsecond
	// probeAfter: a backend skipped as slower gets its turn again once its
	// latest sample is this old, for a fresh one. One slow for a moment is
	// back within it; one that stays slow gets a few requests a second.
	// (Skipped with no end, one slow moment kept a replica at 5 % of the
	// load for seconds; given its turn back after a few skips, it was
	// round robin again, with round robin's throughput: bench/README.md.)
	probeAfter = 250 * time.Millisecond
	// stallAfter is how long a backend with requests in flight may go
	// without answering before that silence counts as its load: longer
	// than the moments a replica waits for a CPU on a busy host (up to
	// tens of milliseconds, measured with perf sched), which must not
	// steer load (doc.go says why).
	stallAfter = 50 * time.Millisecond
	// failSample is the latency a failed attempt counts as, so a backend
	// that fails fast does not attract traffic by looking fast.
	failSample = time.Second
)

// randSource is where the balancer's random draws come from; it must be
// safe for concurrent use (the goroutine paths pick at once).
type randSource interface {
	IntN(n int) int // in [0, n)
}

// globalRand is math/rand/v2's source: per-thread, safe for concurrent
// use, and as cheap as a draw can be on the hot path.
type globalRand struct{}

func (globalRand) IntN(n int) int { return rand.IntN(n) }

// backend is one replica behind one route. The hot-path fields are atomics;
// the rest is guarded by the owning pool's mutex.
type backend struct {
	id      string
	replica string
	addr    netip.AddrPort
	host    string // addr.String(), set once: the URL host and dial address
	stats   *replicaStats
	conns   idleConns // keep-alive connections (HTTP mode)

	inflight  atomic.Int64
	ewma      atomic.Uint64 // float64 bits: latency estimate in ns
	lastEWMA  atomic.Int64  // mono ns of the last sample
	progress  atomic.Int64  // mono ns of the last sample, or of when it got work while it had none
	probed    atomic.Int64  // mono ns of the last request it got while found slower
	streak    atomic.Int32  // consecutive failures
	firstFail atomic.Int32  // the failure that began the streak
	mixedFail atomic.Bool   // whether the streak mixes kinds of failure
	probation atomic.Bool   // readmitted and not yet proven: the next failure ejects
	answered  atomic.Int64  // 1 + mono ns of its last HTTP answer under 500; 0: none yet
	awaiting  atomic.Int64  // attempts sent to it waiting for their response head (stall.go)
	awaitFrom atomic.Int64  // mono ns when awaiting last rose from 0
	lastHead  atomic.Int64  // mono ns of the last response head it sent, any status
	hungNow   atomic.Bool   // out.hung, for the request path to read without the lock

	// guarded by pool.mu
	ready    bool
	draining bool
	out      outlier
}

// begin and end bracket one request or connection on b.
func (b *backend) begin(now int64) {
	if b.inflight.Add(1) == 1 {
		b.progress.Store(now)
	}
	b.stats.inflight.Add(1)
}

func (b *backend) end() {
	b.inflight.Add(-1)
	b.stats.inflight.Add(-1)
}

// estimate is b's latency estimate at now, decayed by the time since its
// last sample.
func (b *backend) estimate(now int64) float64 {
	e := math.Float64frombits(b.ewma.Load())
	if dt := now - b.lastEWMA.Load(); dt > 0 && e > 0 {
		e *= math.Exp2(-float64(dt) / float64(ewmaHalfLife))
	}
	return e
}

// observe folds one latency sample into b's estimate. Concurrent updates may
// lose a sample; the estimate stays a fair one.
func (b *backend) observe(now int64, sample time.Duration) {
	e := b.estimate(now)
	e += ewmaAlpha * (float64(sample) - e)
	b.ewma.Store(math.Float64bits(e))
	b.lastEWMA.Store(now)
	b.progress.Store(now)
}

// reset sets b's estimate to e, as if just measured.
func (b *backend) reset(now int64, e float64) {
	b.ewma.Store(math.Float64bits(e))
	b.lastEWMA.Store(now)
	b.progress.Store(now)
}

// load is what the balancer compares: b's latency estimate or, for a
// backend of requests (HTTP) with some in flight, the time since it last
// answered or got work while idle, once that is over stallAfter: a replica
// that stopped answering looks slower with every moment, before any of its
// requests fails. (A TCP backend's connections may rightly last for hours.)
func (b *backend) load(now int64, requests bool) float64 {
	e := b.estimate(now)
	if requests && b.inflight.Load() > 0 {
		if silent := now - b.progress.Load(); silent > int64(stallAfter) {
			e = max(e, float64(silent))
		}
	}
	return e
}

// slower reports whether a is clearly slower than b (see slowFactor).
func (p *pool) slower(now int64, a, b *backend) bool {
	return a.load(now, p.requests) > slowFactor*b.load(now, p.requests)+float64(loadSlack)
}

// probe reports whether b, found slower, is due a request all the same,
// for a fresh sample (see probeAfter), and counts it as sent.
func (b *backend) probe(now int64) bool {
	last := b.probed.Load()
	if now-max(last, b.lastEWMA.Load()) <= int64(probeAfter) {
		return false
	}
	return b.probed.CompareAndSwap(last, now)
}

// eligible is the set of backends that may take new requests, swapped whole.
type eligible struct {
	bs      []*backend
	ejected []*backend // ready but ejected: the last resort
}

// pool is the backend set of one route. Picking reads one atomic pointer;
// changes (Sync, ejection, readmission, drain) rebuild the set under mu.
type pool struct {
	project, service string
	svc              *service
	policy           ejectPolicy
	onEvent          func(Event)
	log              *slog.Logger

	clk *clk
	rnd randSource // the balancer's random draws

	set       atomic.Pointer[eligible]
	turn      atomic.Uint64 // round robin over set.bs
	readmitAt atomic.Int64  // mono ns of the earliest ejection end; 0: none
	hold      time.Duration
	// recoveryHold replaces hold while recovering (Route.Recovering).
	recoveryHold time.Duration
	recovering   atomic.Bool
	requests     bool // HTTP: in flight are requests, which should end soon

	epoch atomic.Uint64 // changes at every rebuild
	// isolated is the fallback while the service is quarantined; nil: not.
	isolated atomic.Pointer[canned]

	mu      sync.Mutex
	waiters map[*waiter]struct{} // woken at the next rebuild
	all     []*backend           // in Sync order
	gone    []*backend           // removed by Sync with requests still in flight
}

func newPool(project, service string, mode Mode, svc *service, policy ejectPolicy, onEvent func(Event), log *slog.Logger, hold time.Duration, rnd randSource) *pool {
	p := &pool{project: project, service: service, svc: svc, policy: policy, onEvent: onEvent, log: log, hold: hold,
		requests: mode != TCP, waiters: map[*waiter]struct{}{}, clk: svc.clk, rnd: rnd}
	p.set.Store(&eligible{})
	return p
}

// await picks a backend for a new connection (TCP); when none is eligible
// it waits up to the pool's hold for one (a replica restarting, or its
// readiness not yet synced), so a blip of a few hundred milliseconds delays
// connections instead of failing them. It returns nil when the hold passes
// or ctx ends. (An HTTP request's wait is its exchange's.)
func (p *pool) await(ctx context.Context) *backend {
	return p.awaitUntil(ctx, p.now()+int64(p.holdNow()))
}

// holdNow is how long a request that finds no ready backend may wait for one.
func (p *pool) holdNow() time.Duration {
	if p.recovering.Load() && p.recoveryHold > p.hold {
		return p.recoveryHold
	}
	return p.hold
}

// awaitUntil is await with the hold ending at deadline (mono ns).
func (p *pool) awaitUntil(ctx context.Context, deadline int64) *backend {
	for {
		if p.isolated.Load() != nil {
			return nil // quarantined: refused at once, never held
		}
		epoch := p.epoch.Load()
		now := p.now()
		if b := p.pick(now); b != nil || now >= deadline {
			return b
		}
		until := deadline
		if t := p.readmitAt.Load(); t > now && t < until {
			until = t
		}
		if !p.sleep(ctx, epoch, until) {
			return nil
		}
	}
}

// now is the pool's clock's mono.
func (p *pool) now() int64 { return p.clk.mono() }

// waiter is one wait for the pool to change; wake is called once, with
// the pool's lock held, so it must only signal (el.Execute, a channel).
type waiter struct{ wake func() }

// watch has w woken at the pool's next change, and reports whether it
// will be: false when the pool has changed since epoch already (w is then
// not kept, and the caller should look again at once).
func (p *pool) watch(w *waiter, epoch uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.epoch.Load() != epoch {
		return false
	}
	p.waiters[w] = struct{}{}
	return true
}

// unwatch forgets w, which was woken or gave up.
func (p *pool) unwatch(w *waiter) {
	p.mu.Lock()
	delete(p.waiters, w)
	p.mu.Unlock()
}

// waiting is how many waits are on the pool: requests (and connections)
// waiting for a replica.
func (p *pool) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters)
}

// sleep is a wait on a goroutine: until (mono ns), a change of the pool
// since epoch, or the end of ctx (false).
func (p *pool) sleep(ctx context.Context, epoch uint64, until int64) bool {
	changed := make(chan struct{}, 1)
	w := &waiter{wake: func() { changed <- struct{}{} }}
	if !p.watch(w, epoch) {
		return ctx.Err() == nil
	}
	defer p.unwatch(w)
	timer := make(chan struct{}, 1)
	t := p.clk.AfterFunc(time.Duration(until-p.now()), func() { timer <- struct{}{} })
	defer t.Stop()
	select {
	case <-changed:
	case <-timer:
	case <-ctx.Done():
		return false
	}
	return true
}

// pick returns a backend for a new request, or nil when none is eligible:
// the eligible ones in turn, but one clearly slower than another drawn at
// random gives its turn to that one (doc.go, Balancing, says why).
func (p *pool) pick(now int64) *backend {
	if t := p.readmitAt.Load(); t != 0 && now >= t {
		p.readmit(now)
	}
	bs := p.set.Load().bs
	n := len(bs)
	switch n {
	case 0:
		return p.pickExcept(now) // the ejected, if any
	case 1:
		return bs[0]
	}
	i := int(p.turn.Add(1) % uint64(n))
	j := p.rnd.IntN(n - 1)
	if j >= i {
		j++
	}
	if p.slower(now, bs[i], bs[j]) && !bs[i].probe(now) {
		return bs[j]
	}
	return bs[i]
}

// afterStale is where a request goes again when its reused connection to
// b broke before any answer. b may have closed the connection while it was
// idle, or died: a killed replica's address can swallow a new connection's
// attempts for the whole dial timeout. So another ready replica not tried
// yet takes it when there is one, and b itself otherwise. Either way on a
// new connection, which cannot be stale: one such resend per attempt.
func (p *pool) afterStale(now int64, b *backend, tried []*backend) *backend {
	if next := p.twoChoices(now, p.set.Load().bs, tried); next != nil {
		return next
	}
	return b
}

// next is pick for a request sent to tried so far: in turn when none.
func (p *pool) next(now int64, tried []*backend) *backend {
	if len(tried) == 0 {
		return p.pick(now)
	}
	return p.pickExcept(now, tried...)
}

// pickExcept is pick for a retry: never one of tried. The two choices are
// drawn from the eligible backends not tried (a reservoir of two, which
// costs a pass over them), so a retry finds the one live backend left
// even when the others failed. When none is left, an ejected backend
// that is still ready is tried: ejection is a suspicion, and a replica
// that failed while it restarted can be fine again long before its
// ejection ends, while the ones left in rotation fail.
func (p *pool) pickExcept(now int64, tried ...*backend) *backend {
	if t := p.readmitAt.Load(); t != 0 && now >= t {
		p.readmit(now)
	}
	set := p.set.Load()
	if b := p.twoChoices(now, set.bs, tried); b != nil {
		return b
	}
	return p.twoChoices(now, set.ejected, tried)
}

// twoChoices is the less loaded of two backends drawn at random from bs
// less tried (a reservoir of two); nil when none is left.
func (p *pool) twoChoices(now int64, bs, tried []*backend) *backend {
	var a, b *backend
	n := 0
	for _, x := range bs {
		if slices.Contains(tried, x) {
			continue
		}
		n++
		switch {
		case n == 1:
			a = x
		case n == 2:
			b = x
		default: // keeps each of the n in the pair with probability 2/n
			switch p.rnd.IntN(n) {
			case 0:
				a = x
			case 1:
				b = x
			}
		}
	}
	if b == nil {
		return a
	}
	if p.rnd.IntN(2) == 0 { // the reservoir's order is not random; ties must be
		a, b = b, a
	}
	if b.load(now, p.requests) < a.load(now, p.requests) {
		return b
	}
	return a
}

// update replaces the pool's backends with want, keeping the state (and the
// in-flight requests) of those that stay. drained reports the IDs that
// Drain took out of rotation.
func (p *pool) update(want []Backend, drained func(id string) bool) {
	now := p.now()
	dropped := false
	defer func() {
		if dropped {
			closeParked() // after the lock: the loops' parked connections to them
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	old := make(map[string]*backend, len(p.all))
	for _, b := range p.all {
		old[b.id] = b
	}
	best := p.bestEstimate(now)
	next := make([]*backend, 0, len(want))
	seen := make(map[string]bool, len(want))
	for _, w := range want {
		if seen[w.ID] {
			continue
		}
		seen[w.ID] = true
		b := old[w.ID]
		if b == nil || b.addr != w.Addr || b.replica != w.Replica {
			if b != nil {
				b.conns.close()
				dropped = true
			}
			b = &backend{id: w.ID, replica: w.Replica, addr: w.Addr, host: w.Addr.String(), stats: p.svc.replica(w.Replica)}
			b.reset(now, best)
		}
		delete(old, w.ID)
		b.ready = w.Ready
		b.draining = drained(w.ID)
		next = append(next, b)
	}
	for _, b := range old {
		b.conns.close()
		p.gone = append(p.gone, b)
		dropped = true
	}
	p.all = next
	p.pruneGone()
	p.rebuild()
}

// closeConns closes the backends' connections: the route is gone.
func (p *pool) closeConns() {
	p.mu.Lock()
	for _, bs := range [][]*backend{p.all, p.gone} {
		for _, b := range bs {
			b.conns.close()
			b.conns.cut()
		}
	}
	p.mu.Unlock()
	closeParked()
}

// pruneGone forgets removed backends whose last request has finished.
func (p *pool) pruneGone() {
	kept := p.gone[:0]
	for _, b := range p.gone {
		if b.inflight.Load() > 0 {
			kept = append(kept, b)
		}
	}
	clear(p.gone[len(kept):])
	p.gone = kept
}

// lastAnswer is 1 + the mono ns of the last answer of the backends with id; 0: none.
func (p *pool) lastAnswer(id string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var last int64
	for _, b := range p.all {
		if b.id == id {
			last = max(last, b.answered.Load())
		}
	}
	return last
}

// drain takes the backends with id out of rotation and returns them,
// including removed ones that still have requests in flight.
func (p *pool) drain(id string) []*backend {
	p.mu.Lock()
	var out []*backend
	for _, b := range p.all {
		if b.id == id {
			b.draining = true
			out = append(out, b)
		}
	}
	p.pruneGone()
	for _, b := range p.gone {
		if b.id == id {
			out = append(out, b)
		}
	}
	p.rebuild()
	var hung []*backend
	for _, b := range out {
		if b.out.hung {
			hung = append(hung, b)
		}
	}
	p.mu.Unlock()
	for _, b := range hung { // the replica that replaces it is ready: the requests waiting on it go there
		cutWaiting(b)
	}
	return out
}

// rebuild publishes the eligible set and the next readmission time. Call
// with mu held.
func (p *pool) rebuild() {
	bs := make([]*backend, 0, len(p.all))
	var ejected []*backend
	var next int64
	for _, b := range p.all {
		switch {
		case !b.ready || b.draining || b.out.hung:
		case b.out.until != 0:
			ejected = append(ejected, b)
		default:
			bs = append(bs, b)
		}
		if b.out.until != 0 && (next == 0 || b.out.until < next) {
			next = b.out.until
		}
	}
	p.set.Store(&eligible{bs: bs, ejected: ejected})
	p.readmitAt.Store(next)
	p.epoch.Add(1)
	for w := range p.waiters {
		w.wake()
	}
	clear(p.waiters)
}

// bestEstimate is the lowest latency estimate among the backends in
// rotation: where a new or readmitted backend starts, so it gets its share
// at once without being flooded, and one failing neighbour does not make it
// look slow. Call with mu held.
func (p *pool) bestEstimate(now int64) float64 {
	best := -1.0
	for _, b := range p.all {
		if b.out.until == 0 && b.ready && !b.draining {
			if e := b.estimate(now); best < 0 || e < best {
				best = e
			}
		}
	}
	return max(best, 0)
}

// inRotation counts the backends that are ready and not draining, ejected
// or not, and those of them that are ejected. Call with mu held.
func (p *pool) inRotation() (ready, ejected int) {
	for _, b := range p.all {
		if b.ready && !b.draining {
			ready++
			if b.out.until != 0 {
				ejected++
			}
		}
	}
	return ready, ejected
}
