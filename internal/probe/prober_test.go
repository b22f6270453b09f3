package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/testwait"
)

// app is a replica's HTTP side: /live and /ready answer 200 or 503 as told,
// and count the checks they answer. While pause is locked, checks hang.
type app struct {
	srv         *httptest.Server
	pause       sync.RWMutex
	live, ready atomic.Bool
	hits        atomic.Int32 // all checks
	sick        atomic.Int32 // checks answered 503
}

func newApp(t *testing.T) *app {
	a := &app{}
	a.live.Store(true)
	a.ready.Store(true)
	answer := func(ok *atomic.Bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			a.pause.RLock()
			defer a.pause.RUnlock()
			a.hits.Add(1)
			if !ok.Load() {
				a.sick.Add(1)
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/live", answer(&a.live))
	mux.Handle("/ready", answer(&a.ready))
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

// probe is an HTTP probe of path on a, checked every second.
func (a *app) probe(t *testing.T, path string, fails, passes int) *spec.Probe {
	return &spec.Probe{
		HTTP:     &spec.HTTPCheck{Port: portOf(t, a.srv.Listener), Path: path, StatusMin: 200, StatusMax: 299},
		Interval: time.Second, Timeout: 2 * time.Second, FailureThreshold: fails, SuccessThreshold: passes,
	}
}

// harness runs a Prober on a fake clock and records OnChange calls with the
// health they saw.
type harness struct {
	*Prober
	clk     *clock.Fake
	mu      sync.Mutex
	changes []Health
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, exec Execer, onChange func(*harness)) *harness {
	h := &harness{clk: clock.NewFake(t0), done: make(chan error, 1)}
	h.Prober = New(Config{Exec: exec, Clock: h.clk, OnChange: func(id string) {
		health, _ := h.Status(id)
		h.mu.Lock()
		h.changes = append(h.changes, health)
		h.mu.Unlock()
		if onChange != nil {
			onChange(h)
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

func (h *harness) changed() []Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Health(nil), h.changes...)
}

// await moves the clock a second at a time until cond holds.
func (h *harness) await(t *testing.T, what string, cond func(Health) bool) {
	t.Helper()
	testwait.Eventually(t, what, func() bool {
		health, _ := h.Status("c1")
		if cond(health) {
			return true
		}
		h.clk.Advance(time.Second)
		return false
	})
}

// wait waits for cond with the clock standing still: for what the checks
// made as loops start decide.
func (h *harness) wait(t *testing.T, what string, cond func(Health) bool) {
	t.Helper()
	testwait.Eventually(t, what, func() bool { health, _ := h.Status("c1"); return cond(health) })
}

// stays checks that the clock standing still brings no more checks than n.
func stays(t *testing.T, what string, n int32, hits func() int32) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	if got := hits(); got != n {
		t.Errorf("%s: %d checks, want %d", what, got, n)
	}
}

func both(s Status) func(Health) bool {
	return func(h Health) bool { return h.Live.Status == s && h.Ready.Status == s }
}
func live(s Status) func(Health) bool  { return func(h Health) bool { return h.Live.Status == s } }
func ready(s Status) func(Health) bool { return func(h Health) bool { return h.Ready.Status == s } }

func watch(ip string, liveness, readiness *spec.Probe) Watch {
	return Watch{Target: Target{ID: "c1", IP: ip, StartedAt: t0}, Liveness: liveness, Readiness: readiness}
}

func TestProberChecksAtOnce(t *testing.T) {
	a := newApp(t)
	h := start(t, nil, nil)
	h.Sync([]Watch{watch("127.0.0.1", a.probe(t, "/live", 3, 1), nil)})
	// The clock never moves: only the first check, made as the loop starts, can pass.
	h.wait(t, "passing", live(Passing))
	if s, _ := h.Status("c1"); s.Ready.Status != Unknown {
		t.Errorf("readiness without a probe is %q, want unknown", s.Ready.Status)
	}
	stays(t, "clock standing still", 1, a.hits.Load)
}

func TestProberSyncBeforeRun(t *testing.T) {
	a := newApp(t)
	p := New(Config{Clock: clock.NewFake(t0)})
	p.Sync([]Watch{watch("127.0.0.1", a.probe(t, "/live", 3, 1), nil)})
	if s, ok := p.Status("c1"); !ok || s.Live.Status != Unknown {
		t.Fatalf("before Run: %+v, %v; want watched and unknown", s, ok)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testwait.Eventually(t, "passing", func() bool { s, _ := p.Status("c1"); return s.Live.Status == Passing })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := p.Run(context.Background()); err == nil {
		t.Error("a second Run did not fail")
	}
}

// A replica that turns sick fails after FailureThreshold checks, and OnChange
// sees the verdict before the next check. One probe for both states is
// checked once and feeds both.
func TestProberFailsAfterThreshold(t *testing.T) {
	a := newApp(t)
	var sickAtChange, hitsAtChange atomic.Int32
	h := start(t, nil, func(h *harness) {
		if s, _ := h.Status("c1"); s.Live.Status == Failing {
			sickAtChange.Store(a.sick.Load())
			hitsAtChange.Store(a.hits.Load())
		}
	})
	p := a.probe(t, "/live", 3, 1)
	h.Sync([]Watch{watch("127.0.0.1", p, p)})
	h.wait(t, "passing", live(Passing))
	a.live.Store(false)
	h.await(t, "failing", live(Failing))
	// Status shows the verdict a moment before OnChange has run; hits is stored last.
	testwait.Eventually(t, "OnChange to see the failing verdict", func() bool { return hitsAtChange.Load() != 0 })

	if n := sickAtChange.Load(); n != 3 {
		t.Errorf("failing after %d sick checks, want 3", n)
	}
	changes := h.changed()
	if len(changes) != 3 || changes[1].Live.Status != Passing || changes[1].Live.Failures != 1 {
		t.Fatalf("OnChange called %d times, want 3 (passing, first failure, failing): %+v", len(changes), changes)
	}
	changes = []Health{changes[0], changes[2]}
	for i, want := range []Status{Passing, Failing} {
		if c := changes[i]; c.Live.Status != want || c.Ready.Status != want {
			t.Errorf("change %d: live %q, ready %q; want both %q", i, c.Live.Status, c.Ready.Status, want)
		}
	}
	if c := changes[1].Live; c.Failures != 3 || c.Last.Output != "HTTP 503" || !c.Since.Equal(c.Last.At) {
		t.Errorf("failing state %+v: want 3 failures, the 503 last and since its check", c)
	}
	if got, checks := hitsAtChange.Load(), int32(1+3); got != checks {
		t.Errorf("server answered %d checks, want %d: one per check, not one per state", got, checks)
	}
}

func TestProberReadinessFlaps(t *testing.T) {
	a := newApp(t)
	h := start(t, nil, nil)
	h.Sync([]Watch{watch("127.0.0.1", a.probe(t, "/live", 3, 1), a.probe(t, "/ready", 1, 1))})
	// Both checks' first verdicts: under load readiness can pass before liveness has run once.
	h.await(t, "ready and live", both(Passing))
	for range 3 {
		a.ready.Store(false)
		h.await(t, "not ready", ready(Failing))
		a.ready.Store(true)
		h.await(t, "ready again", ready(Passing))
	}
	s, _ := h.Status("c1")
	if s.Live.Status != Passing || s.Live.Failures != 0 {
		t.Errorf("liveness %+v, want passing throughout", s.Live)
	}
	// OnChange runs a moment after Status shows the verdict.
	testwait.Eventually(t, "OnChange for the start and each flap (at least 7 calls)", func() bool { return len(h.changed()) >= 1+6 })
	for _, c := range h.changed() {
		if c.Live.Status != Passing && c.Live.Status != Unknown {
			t.Errorf("liveness went %q while readiness flapped", c.Live.Status)
		}
	}
}

func TestProberSharedProbeChecksOnce(t *testing.T) {
	a := newApp(t)
	for name, twin := range map[string]func(*spec.Probe) *spec.Probe{
		"same pointer": func(p *spec.Probe) *spec.Probe { return p },
		"equal copy":   func(p *spec.Probe) *spec.Probe { c := *p; h := *p.HTTP; c.HTTP = &h; return &c },
	} {
		t.Run(name, func(t *testing.T) {
			a.hits.Store(0)
			h := start(t, nil, nil)
			p := a.probe(t, "/live", 3, 1)
			h.Sync([]Watch{watch("127.0.0.1", p, twin(p))})
			h.wait(t, "both passing", both(Passing))
			if n := a.hits.Load(); n != 1 {
				t.Errorf("%d checks for both states, want 1", n)
			}
			h.stop()
		})
	}
}

func TestProberSyncSameTargetsKeepsLoops(t *testing.T) {
	a := newApp(t)
	h := start(t, nil, nil)
	h.Sync([]Watch{watch("127.0.0.1", a.probe(t, "/live", 3, 1), a.probe(t, "/ready", 3, 1))})
	h.wait(t, "passing", both(Passing))
	checks := a.hits.Load()
	// The same targets, rebuilt as a caller would after each observation.
	h.Sync([]Watch{watch("127.0.0.1", a.probe(t, "/live", 3, 1), a.probe(t, "/ready", 3, 1))})
	if s, _ := h.Status("c1"); s.Live.Status != Passing || s.Ready.Status != Passing {
		t.Errorf("after the same Sync: %+v, want both still passing", s)
	}
	stays(t, "the same Sync", checks, a.hits.Load)
}

func TestProberSyncRestartsChanged(t *testing.T) {
	a := newApp(t)
	h := start(t, nil, nil)
	w := watch("127.0.0.1", a.probe(t, "/live", 3, 1), a.probe(t, "/ready", 3, 1))
	h.Sync([]Watch{w})
	h.wait(t, "passing", both(Passing))

	// Only the readiness probe changed: liveness carries on.
	w.Readiness = a.probe(t, "/ready", 1, 1)
	a.pause.Lock() // so the new loop's first check cannot pass before we look
	h.Sync([]Watch{w})
	if s, _ := h.Status("c1"); s.Live.Status != Passing || s.Ready.Status != Unknown {
		t.Errorf("after a new readiness probe: live %q, ready %q; want passing, unknown", s.Live.Status, s.Ready.Status)
	}
	a.pause.Unlock()
	h.wait(t, "ready again", ready(Passing))

	// A new run of the container starts afresh.
	w.StartedAt = t0.Add(time.Minute)
	before := a.hits.Load()
	a.pause.Lock()
	h.Sync([]Watch{w})
	if s, _ := h.Status("c1"); s.Live.Status != Unknown || s.Ready.Status != Unknown {
		t.Errorf("after a restart: live %q, ready %q; want both unknown", s.Live.Status, s.Ready.Status)
	}
	a.pause.Unlock()
	h.wait(t, "both checked at once", both(Passing))
	if n := a.hits.Load() - before; n != 2 {
		t.Errorf("%d checks after the restart, want 2", n)
	}
}

func TestProberSyncRemovesTarget(t *testing.T) {
	a := newApp(t)
	before := goruntime.NumGoroutine()
	h := start(t, nil, nil)
	h.Sync([]Watch{watch("127.0.0.1", a.probe(t, "/live", 3, 1), a.probe(t, "/ready", 3, 1))})
	h.wait(t, "passing", both(Passing))
	h.Sync(nil)
	if _, ok := h.Status("c1"); ok {
		t.Error("a removed target is still watched")
	}
	testwait.Goroutines(t, before+1) // Run's
	h.stop()
	testwait.Goroutines(t, before)
	h.Sync([]Watch{watch("127.0.0.1", a.probe(t, "/live", 3, 1), nil)}) // after Run: harmless
	testwait.Goroutines(t, before)
}

// Stopping the Prober cuts a check short, and Run waits for its loop.
func TestProberRunStopsSlowCheck(t *testing.T) {
	before := goruntime.NumGoroutine()
	entered := make(chan struct{}, 1)
	exec := &fakeExec{fn: func(ctx context.Context) (runtime.ExecResult, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return runtime.ExecResult{}, ctx.Err()
	}}
	h := start(t, exec, nil)
	p := &spec.Probe{Exec: []string{"sleep", "60"}, Interval: time.Second, Timeout: time.Minute, FailureThreshold: 1, SuccessThreshold: 1}
	h.Sync([]Watch{watch("", p, nil)})
	<-entered
	h.stop()
	if s, _ := h.Status("c1"); s.Live.Status != Unknown || !s.Live.Last.At.IsZero() {
		t.Errorf("a check cut short by the stop counted: %+v", s.Live)
	}
	testwait.Goroutines(t, before)
}

// The next check starts an interval after the previous one started; a check
// that took longer is followed at once, by one check, not by one per
// interval missed.
func TestProberSlowCheckDoesNotStack(t *testing.T) {
	var h *harness
	var n atomic.Int32
	exec := &fakeExec{fn: func(context.Context) (runtime.ExecResult, error) {
		if n.Add(1) == 1 {
			h.clk.Advance(3 * time.Second) // the first check takes three intervals
		}
		return runtime.ExecResult{}, nil
	}}
	h = start(t, exec, nil)
	p := &spec.Probe{Exec: []string{"check"}, Interval: time.Second, Timeout: time.Minute, FailureThreshold: 1, SuccessThreshold: 1}
	h.Sync([]Watch{watch("", p, nil)})
	testwait.Eventually(t, "a second check", func() bool { return n.Load() == 2 })
	stays(t, "after the slow check", 2, n.Load)
	if s, _ := h.Status("c1"); !s.Live.Last.At.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("second check at %v, want right after the slow first one, at %v", s.Live.Last.At, t0.Add(3*time.Second))
	}
}

// Failures in the start grace leave a new replica unknown; after it, they count.
func TestProberStartGrace(t *testing.T) {
	a := newApp(t)
	a.live.Store(false)
	h := start(t, nil, nil)
	p := a.probe(t, "/live", 2, 1)
	p.StartGrace = 10 * time.Second
	h.Sync([]Watch{watch("127.0.0.1", p, nil)})
	h.await(t, "failing", live(Failing))
	s, _ := h.Status("c1")
	if since := s.Live.Since.Sub(t0); since < 11*time.Second {
		t.Errorf("failing %s after the start, want after the 10s grace and a second failure", since)
	}
}
