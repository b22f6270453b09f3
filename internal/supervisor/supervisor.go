package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/logwatch"
	"github.com/tend-sh/tend/internal/probe"
	"github.com/tend-sh/tend/internal/quarantine"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// Config wires a Supervisor; zero values of the optional fields are defaults.
type Config struct {
	Runtime runtime.Runtime // required
	Store   store.Store     // required
	Clock   clock.Clock     // default clock.Real
	Log     *slog.Logger    // default: discard
	// Resync is the longest time between two passes (default 10s).
	Resync time.Duration
	// Parallel bounds the engine calls one batch of actions makes at once
	// (default 8: the engine, not tend, limits how fast containers start).
	Parallel int
	// Traffic is the proxy on the published ports; nil: ports are not served.
	Traffic Traffic
	// Placement is, in a cluster, where each slot runs; nil on a single
	// host, which runs every slot.
	Placement Placement
}

// Placement is the cluster's assignment of slots to nodes, as this host
// last read it (internal/cluster.Member).
type Placement interface {
	// Placed is the node of each of the project's placed slots.
	Placed(project string) map[reconcile.SlotKey]string
	// Node is this host's name in the cluster.
	Node() string
	// Reports are the replicas each node last reported of itself (JSON of
	// []Replica), by node: the proxy also routes to the other nodes' replicas.
	Reports() map[string][]byte
}

// Supervisor keeps every stored project at its desired state.
type Supervisor struct {
	cfg  Config
	wake chan struct{}

	mu   sync.Mutex
	busy map[string]bool // slots with an action under way, by slotID; a project under teardown by its name
	// done counts the actions finished per slot. A pass that observed the
	// engine before an action finished must not act on the slot: what it saw
	// is already out of date (it would, say, start a container twice).
	done  map[string]uint64
	waits map[string][]reconcile.Wait // the last plan's waits, by project
	downs map[string]retry            // failed teardowns, by project
	work  sync.WaitGroup              // running action batches
	ctx   context.Context             // Run's, for work started by a log rule

	probes     *probe.Prober
	logs       *logwatch.Watcher
	condemned  map[string]condemned // replicas a log rule condemned, by container
	ready      map[string]bool      // readiness last seen, by running container, once it was ready
	readyRun   map[string]time.Time // the run (start time) last seen ready, by container, also once it exited
	hung       map[string]bool      // replicas the proxy found hung, by container: true to replace (stall.go)
	hungSpent  map[string]bool      // services (project/service) whose hang a replacement did not end
	excused    map[string]bool      // containers whose timed-out checks are journaled as inconclusive (health.go)
	trafficErr string               // the proxy's last failure to serve a port, journaled once
	// seen is the last pass's view of each project, for updating the
	// proxy between passes (a probe verdict, a container's death).
	seen     map[string]seenProject
	gateways map[string]string // the host's address on each network, by engine name
	// held is the services a quarantine holds, by project and service, as
	// the last pass decided (quarantine.go).
	held    map[string]map[string]quarantine.State
	readyAt map[string]time.Time // when a replica of project/service was last seen ready
	// trafficMu orders the proxy's updates: routes are computed and synced
	// under it, so an update weighed on older verdicts never lands last.
	trafficMu sync.Mutex
	counts    counts   // the replica counts chosen apart from the spec (autoscale.go)
	cpu       cpuMeter // the cores each autoscaled replica used (cpu.go)
	rolls     rolls    // the rollouts as the last pass left them (rollout.go)

	// jmu orders journal writes; backlog holds what the store refused (backlog.go).
	jmu     sync.Mutex
	backlog backlog
	engine  engineWatch // the engine's outages (engine.go), under mu
}

// retry paces a failing teardown, so an engine that refuses (a network with
// outside containers on it, say) is asked again with backoff, not in a loop.
type retry struct {
	failures int
	at       time.Time
}

// New returns a Supervisor; it starts nothing until Run.
func New(cfg Config) *Supervisor {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 10 * time.Second
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	s := &Supervisor{cfg: cfg, wake: make(chan struct{}, 1), busy: map[string]bool{}, done: map[string]uint64{},
		waits: map[string][]reconcile.Wait{}, downs: map[string]retry{}, ctx: context.Background(),
		condemned: map[string]condemned{}, ready: map[string]bool{}, readyRun: map[string]time.Time{}, hung: map[string]bool{}, hungSpent: map[string]bool{}, excused: map[string]bool{}, seen: map[string]seenProject{}, gateways: map[string]string{},
		held: map[string]map[string]quarantine.State{}, readyAt: map[string]time.Time{}}
	s.probes = probe.New(probe.Config{Exec: cfg.Runtime, Clock: cfg.Clock, Log: cfg.Log, OnChange: func(id string) { s.onProbeChange(id) }})
	s.logs = logwatch.New(logwatch.Config{Source: cfg.Runtime, Clock: cfg.Clock, Log: cfg.Log, OnFire: s.onLogMatch})
	return s
}

// Run supervises until ctx ends, then waits for the actions under way.
// Stopping the supervisor never stops the stack.
func (s *Supervisor) Run(ctx context.Context) error {
	s.journalAdoption(ctx)
	g, ctx := errgroup.WithContext(ctx)
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	g.Go(func() error { return s.watchEvents(ctx) })
	g.Go(func() error { return s.probes.Run(ctx) })
	g.Go(func() error { return s.logs.Run(ctx) })
	g.Go(func() error { return s.loop(ctx) })
	err := g.Wait()
	s.work.Wait()
	return err
}

// Poke asks for a pass soon.
func (s *Supervisor) Poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Supervisor) loop(ctx context.Context) error {
	for {
		next := s.pass(ctx)
		wait := s.cfg.Resync
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.cfg.Clock.Now()), 0))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-s.cfg.Clock.After(wait):
		}
	}
}

// watchEvents turns engine events into wake-ups, reconnecting when the stream breaks.
func (s *Supervisor) watchEvents(ctx context.Context) error {
	delay := 100 * time.Millisecond
	for {
		evs, errc := s.cfg.Runtime.Events(ctx)
		s.Poke() // anything may have happened while we were not listening
		for e := range evs {
			s.cfg.Log.Debug("engine event", "action", e.Action, "service", e.Service)
			if endsTraffic(e) {
				s.trafficGone(e.Container) // before the pass: a pass can take seconds on a busy engine
			}
			s.Poke()
			delay = 100 * time.Millisecond
		}
		err := <-errc
		if ctx.Err() != nil {
			return nil
		}
		s.engineLost(s.cfg.Clock.Now())
		s.cfg.Log.Warn("engine event stream lost; reconnecting", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-s.cfg.Clock.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// endsTraffic reports whether e means its container stops serving now: it
// died or went, or was sent a signal that ends a process (KILL, or what
// `docker stop` sends: TERM, INT, QUIT; a kill whose signal is not said
// too). Any other signal is no end: HUP and USR1 ask many servers to
// reload, and a replica that dies of one says so with its die event.
func endsTraffic(e runtime.Event) bool {
	switch e.Action {
	case "die", "destroy":
		return true
	case "kill":
		switch syscall.Signal(e.Signal) {
		case 0, syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT:
			return true
		}
	}
	return false
}

// Up stores a new version of a project's desired state and wakes the loop.
// A slot that gave up gets a fresh budget: the user has stepped in.
func (s *Supervisor) Up(ctx context.Context, p spec.Project) (store.Record, error) {
	if err := spec.Validate(&p); err != nil {
		return store.Record{}, errs.Wrap(errs.Invalid, err)
	}
	if err := s.checkImageHealthchecks(ctx, &p); err != nil {
		return store.Record{}, err
	}
	if old, err := s.cfg.Store.Project(p.Name); err == nil && old.Deleting {
		return store.Record{}, errs.E(errs.Conflict, "project %s is being taken down; try again when `tend down` is done", p.Name)
	}
	rec, err := s.cfg.Store.PutProject(p, s.cfg.Clock.Now())
	if err != nil {
		return store.Record{}, err
	}
	if err := s.forgiveSlots(p.Name); err != nil {
		return store.Record{}, err
	}
	s.liftChanged(&p) // quarantine.go
	s.journal(store.Entry{Project: p.Name, Action: "up", Reason: "requested",
		Message: fmt.Sprintf("desired state version %d: %s", rec.Version, summary(&p))})
	s.Poke()
	return rec, nil
}

// UpSelected is Up for some services of a project (`tend up SERVICE...`): they
// replace or join the project's stored services, and the others stay.
func (s *Supervisor) UpSelected(ctx context.Context, sel spec.Project) (store.Record, error) {
	old, err := s.cfg.Store.Project(sel.Name)
	switch {
	case errs.KindOf(err) == errs.NotFound:
		return s.Up(ctx, sel)
	case err != nil:
		return store.Record{}, err
	}
	return s.Up(ctx, *spec.Overlay(&old.Project, &sel))
}

func (s *Supervisor) forgiveSlots(project string) error {
	hs, err := s.cfg.Store.History(project)
	if err != nil {
		return err
	}
	changed := map[reconcile.SlotKey]reconcile.History{}
	for k, h := range hs {
		if h.GaveUp {
			h.Settled = time.Time{} // else the exit it gave up on stays settled and is never restarted
		}
		if h.GaveUp || len(h.Streak) > 0 {
			h.GaveUp, h.Streak = false, nil
			changed[k] = h
		}
	}
	return s.cfg.Store.PutHistory(project, changed)
}

func summary(p *spec.Project) string {
	n, out := 0, ""
	for _, svc := range p.Services {
		n += svc.Replicas
		if out != "" {
			out += ", "
		}
		out += fmt.Sprintf("%s×%d", svc.Name, svc.Replicas)
	}
	return fmt.Sprintf("%d services, %d replicas (%s)", len(p.Services), n, out)
}

// Down takes a project down and returns when its containers and networks (and,
// if asked, volumes) are gone. The intent is stored first, so a tend that dies
// half-way finishes the job when it comes back.
func (s *Supervisor) Down(ctx context.Context, name string, volumes bool) error {
	if _, err := s.cfg.Store.Project(name); err != nil {
		return err
	}
	if err := s.cfg.Store.MarkDeleting(name, volumes); err != nil {
		return err
	}
	s.Poke()
	for {
		if _, err := s.cfg.Store.Project(name); err != nil {
			if errs.KindOf(err) == errs.NotFound {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return errs.Wrap(errs.Unavailable, fmt.Errorf("down %s: %w", name, ctx.Err()))
		case <-s.cfg.Clock.After(50 * time.Millisecond):
		}
	}
}

// journalAdoption records, at start, which containers this tend takes over.
func (s *Supervisor) journalAdoption(ctx context.Context) {
	recs, err := s.cfg.Store.Projects()
	if err != nil {
		s.cfg.Log.Error("read projects", "err", err)
		return
	}
	all, err := s.cfg.Runtime.List(ctx, "")
	if err != nil {
		s.cfg.Log.Warn("list containers at start", "err", err)
		return
	}
	for _, rec := range recs {
		n, running := 0, 0
		for _, c := range all {
			if c.Project == rec.Project.Name {
				n++
				if c.State == runtime.Running {
					running++
				}
			}
		}
		s.journal(store.Entry{Project: rec.Project.Name, Action: "adopt", Reason: "tend-started",
			Message: fmt.Sprintf("found %d containers (%d running) of desired state version %d", n, running, rec.Version)})
	}
}
