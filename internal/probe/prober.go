package probe

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/spec"
)

// Config wires a Prober; zero values of the optional fields are defaults.
type Config struct {
	Exec  Execer      // runs exec probes; without it they fail
	Clock clock.Clock // paces the checks and stamps their results; default clock.Real
	// OnChange is called whenever the Status of a target's liveness or
	// readiness changes through a check, and at the first failure of a
	// passing liveness probe (tend may start a standby): from a check loop's goroutine,
	// after the new state is visible to Status, and before that loop checks
	// again. It must not block long. A reset by Sync does not call it.
	OnChange func(id string)
	Log      *slog.Logger // default: discard
}

// Watch is a container to probe and its probes.
type Watch struct {
	Target
	Liveness *spec.Probe // nil: not probed, Live stays Unknown
	// Readiness nil: not probed, Ready stays Unknown (callers pass
	// spec.Extension.ReadinessProbe(), which falls back to the liveness
	// probe). The same probe as Liveness, by pointer or by value, is checked
	// once for both.
	Readiness *spec.Probe
}

// Health is the current verdicts on a container; a probe that is not
// configured stays Unknown.
type Health struct {
	Live  State `json:"live"`
	Ready State `json:"ready"`
}

// Prober runs the probes of the containers it is told to watch.
type Prober struct {
	cfg Config

	mu      sync.Mutex
	ctx     context.Context // Run's, while it runs; loops start under it
	ran     bool            // Run was called
	stopped bool            // Run is returning: start no more loops
	targets map[string]*target
	loops   sync.WaitGroup
}

// target is one watched container and its check loops.
type target struct {
	w      Watch
	health Health
	loops  []*loop
}

// loop is one probe checked on a schedule, feeding one or both states.
type loop struct {
	probe       *spec.Probe
	live, ready bool               // the states it feeds
	cancel      context.CancelFunc // nil until started
	stopped     bool               // its results are no longer wanted
}

// New returns a Prober; it starts nothing until Run.
func New(cfg Config) *Prober {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Prober{cfg: cfg, targets: map[string]*target{}}
}

// Run checks the watched containers until ctx ends, then stops every check
// loop and returns once they have exited. Targets synced before Run are
// checked when it starts.
func (p *Prober) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.ran {
		p.mu.Unlock()
		return errors.New("probe: Run called twice")
	}
	p.ran, p.ctx = true, ctx
	for _, t := range p.targets {
		p.startLoops(t)
	}
	p.mu.Unlock()

	<-ctx.Done()

	p.mu.Lock()
	p.stopped = true
	for _, t := range p.targets {
		stopLoops(t.loops)
	}
	p.mu.Unlock()
	p.loops.Wait()
	return nil
}

// Sync makes targets the full set of containers to probe. It starts checking
// new ones, stops checking those not in the set, and starts afresh (Unknown
// again) on one whose address or start time changed: that is a new run.
// A probe whose spec changed is restarted alone; targets equal to the
// current ones keep their loops and states. Sync never waits for a check.
func (p *Prober) Sync(targets []Watch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := make(map[string]bool, len(targets))
	for _, w := range targets {
		seen[w.ID] = true
		t, ok := p.targets[w.ID]
		if !ok || t.w.IP != w.IP || !t.w.StartedAt.Equal(w.StartedAt) {
			if ok {
				stopLoops(t.loops)
			}
			t = &target{w: w, health: Health{Live: fresh(), Ready: fresh()}}
			p.targets[w.ID] = t
		}
		p.update(t, w)
	}
	for id, t := range p.targets {
		if !seen[id] {
			stopLoops(t.loops)
			delete(p.targets, id)
		}
	}
}

// update gives t the loops w wants: a loop whose probe and role are unchanged
// carries on, any other is stopped or started, and the states a new loop
// feeds start Unknown. Called with p.mu held.
func (p *Prober) update(t *target, w Watch) {
	t.w = w
	want := plan(w)
	var keep []*loop
	for _, l := range t.loops {
		if i := indexOf(want, l); i >= 0 {
			keep = append(keep, l)
			want = append(want[:i], want[i+1:]...)
			continue
		}
		stopLoops([]*loop{l})
		t.health = t.health.reset(l)
	}
	for _, l := range want {
		t.health = t.health.reset(l)
		keep = append(keep, l)
	}
	t.loops = keep
	p.startLoops(t)
}

// plan is the loops a watch needs: one per distinct probe.
func plan(w Watch) []*loop {
	var ls []*loop
	if w.Liveness != nil {
		ls = append(ls, &loop{probe: w.Liveness, live: true})
	}
	if w.Readiness != nil {
		if w.Liveness != nil && (w.Readiness == w.Liveness || reflect.DeepEqual(w.Readiness, w.Liveness)) {
			ls[0].ready = true
		} else {
			ls = append(ls, &loop{probe: w.Readiness, ready: true})
		}
	}
	return ls
}

func indexOf(ls []*loop, l *loop) int {
	for i, o := range ls {
		if o.live == l.live && o.ready == l.ready && reflect.DeepEqual(o.probe, l.probe) {
			return i
		}
	}
	return -1
}

func (h Health) reset(l *loop) Health {
	if l.live {
		h.Live = fresh()
	}
	if l.ready {
		h.Ready = fresh()
	}
	return h
}

func fresh() State { return State{Status: Unknown} }

// startLoops starts t's loops that are not running, if Run is under way.
// Called with p.mu held.
func (p *Prober) startLoops(t *target) {
	if p.ctx == nil || p.stopped {
		return
	}
	for _, l := range t.loops {
		if l.cancel != nil || l.stopped {
			continue
		}
		ctx, cancel := context.WithCancel(p.ctx)
		l.cancel = cancel
		tg := t.w.Target // a copy: Sync may replace t.w (with an equal target) meanwhile
		p.loops.Go(func() { p.checkLoop(ctx, t, tg, l) })
	}
}

// stopLoops cancels loops and marks their results unwanted. Called with p.mu held.
func stopLoops(ls []*loop) {
	for _, l := range ls {
		l.stopped = true
		if l.cancel != nil {
			l.cancel()
		}
	}
}

// Status returns the current verdicts on container id, or false when it is
// not watched.
func (p *Prober) Status(id string) (Health, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.targets[id]
	if !ok {
		return Health{}, false
	}
	return t.health, true
}
