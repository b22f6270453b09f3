package supervisor_test

import (
	"context"
	"fmt"
	"github.com/tend-sh/tend/internal/testwait"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// waitFor bounds every wait of a test.
const waitFor = testwait.For

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Eventually(t, what, cond)
}

func checkGoroutines(t *testing.T, before int) { t.Helper(); testwait.Goroutines(t, before) }

// t0 is where the fake clock starts.
var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// harness is a supervisor over the fake runtime, a Bolt store in a temporary
// directory and a fake clock that moves only when a test advances it.
type harness struct {
	t   *testing.T
	rt  *fake.Fake
	st  *store.Bolt
	clk *clock.Fake
	sup *supervisor.Supervisor

	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "tend.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := clock.NewFake(t0)
	rt := fake.New()
	rt.SetClock(clk.Now)
	h := &harness{t: t, rt: rt, st: st, clk: clk}
	h.sup = h.newSupervisor()
	return h
}

// newSupervisor makes a supervisor over the harness's runtime, store and clock,
// as a restarted tend would be.
func (h *harness) newSupervisor() *supervisor.Supervisor {
	return supervisor.New(supervisor.Config{Runtime: h.rt, Store: h.st, Clock: h.clk})
}

// start runs the supervisor until the test ends (or stop), then checks that
// Run returned nil and left no goroutine behind.
func (h *harness) start() {
	h.t.Helper()
	before := goruntime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.sup.Run(ctx) }()
	h.t.Cleanup(func() {
		if h.done != nil {
			h.stop()
		}
		checkGoroutines(h.t, before)
	})
}

// stop ends Run and waits for it to return.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(waitFor):
		h.t.Fatalf("Run did not return within %s of its context ending", waitFor)
	}
	h.done = nil
}

// up hands the supervisor p and fails the test on an error.
func (h *harness) up(p spec.Project) store.Record {
	h.t.Helper()
	rec, err := h.sup.Up(context.Background(), p)
	if err != nil {
		h.t.Fatalf("up: %v", err)
	}
	return rec
}

// down runs Down while moving the fake clock, on which Down polls for the
// project to be gone.
func (h *harness) down(name string, volumes bool) error {
	h.t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- h.sup.Down(context.Background(), name, volumes) }()
	var err error
	eventually(h.t, "down to return", func() bool {
		select {
		case err = <-errc:
			return true
		default:
			h.clk.Advance(50 * time.Millisecond)
			return false
		}
	})
	return err
}

// match selects journal entries.
type match struct {
	action, reason, service string
	slot                    int
	failed                  bool // the entry has Error set
}

func (m match) String() string {
	s := fmt.Sprintf("%s/%s %s/%d", m.action, m.reason, m.service, m.slot)
	if m.failed {
		s += " (failed)"
	}
	return s
}

func (m match) of(e store.Entry) bool {
	return e.Action == m.action && e.Reason == m.reason && e.Service == m.service && e.Slot == m.slot &&
		(e.Error != "") == m.failed
}

// entries returns the journal entries that match m, oldest first.
func (h *harness) entries(m match) []store.Entry {
	h.t.Helper()
	all, err := h.st.Journal(store.Query{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []store.Entry
	for _, e := range all {
		if m.of(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitEntry waits for the n-th (from 1) journal entry matching m and returns it.
// It wakes on appends rather than polling.
func (h *harness) waitEntry(m match, n int) store.Entry {
	h.t.Helper()
	deadline := time.After(waitFor)
	for {
		changed := h.st.Appended()
		if es := h.entries(m); len(es) >= n {
			return es[n-1]
		}
		select {
		case <-changed:
		case <-deadline:
			h.t.Fatalf("no journal entry %d of %s within %s; journal:\n%s", n, m, waitFor, h.journal())
		}
	}
}

// journal renders the whole journal for failure messages.
func (h *harness) journal() string {
	all, _ := h.st.Journal(store.Query{})
	var b strings.Builder
	for _, e := range all {
		fmt.Fprintf(&b, "  %d %s %s/%s %s/%d %s: %s", e.Seq, e.Time.Sub(t0), e.Action, e.Reason, e.Service, e.Slot, e.Container, e.Message)
		if e.Error != "" {
			fmt.Fprintf(&b, " [error: %s]", e.Error)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// container returns the ID of the container in a slot of project demo.
func (h *harness) container(service string, slot int) string {
	h.t.Helper()
	var id string
	// A batch creates the slots of a plan in parallel: wait for this one.
	eventually(h.t, fmt.Sprintf("a container in %s/%d", service, slot), func() bool {
		cs, err := h.rt.List(context.Background(), "demo")
		if err != nil {
			h.t.Fatal(err)
		}
		for _, c := range cs {
			if c.Service == service && c.Slot == slot {
				id = c.ID
				return true
			}
		}
		return false
	})
	return id
}

// waitSeen waits until a pass has seen the container in a slot of project
// demo (the slot's memory names it) and returns its ID. Until then the
// planner does not know the slot ever had a container: one removed behind
// tend's back in that window is made again as "new", not "missing".
func (h *harness) waitSeen(service string, slot int) string {
	h.t.Helper()
	id := h.container(service, slot)
	k := reconcile.SlotKey{Service: service, Slot: slot}
	eventually(h.t, "the slot "+k.String()+" to remember its container", func() bool {
		hist, err := h.st.History("demo")
		return err == nil && hist[k].Container == id
	})
	return id
}

// replica returns the status of a slot of project demo.
func (h *harness) replica(service string, slot int) supervisor.Replica {
	h.t.Helper()
	reps, err := h.sup.Status(context.Background(), "demo")
	if err != nil {
		h.t.Fatal(err)
	}
	for _, r := range reps {
		if r.Service == service && r.Slot == slot {
			return r
		}
	}
	h.t.Fatalf("no replica %s/%d in %+v", service, slot, reps)
	return supervisor.Replica{}
}

// calls returns the calls of the given methods the fake received, as text.
func (h *harness) calls(methods ...fake.Method) []string {
	var out []string
	for _, c := range h.rt.Calls() {
		if slices.Contains(methods, c.Method) {
			out = append(out, c.String())
		}
	}
	return out
}

// service is one replica of name on the default network, restarted on any
// exit with a backoff of 500ms doubling to 10s; opts change it.
func service(name string, opts ...func(*spec.Service)) spec.Service {
	s := spec.Service{
		Name:     name,
		Image:    name + ":dev",
		Replicas: 1,
		Networks: []spec.NetworkAttach{{Network: "default"}},
		Restart:  spec.RestartPolicy{Condition: spec.RestartAny},
		Tend: spec.Extension{Backoff: spec.Backoff{
			Initial: 500 * time.Millisecond, Max: 10 * time.Second, ResetAfter: 10 * time.Second,
		}},
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func replicas(n int) func(*spec.Service) { return func(s *spec.Service) { s.Replicas = n } }

func restart(c spec.Condition) func(*spec.Service) {
	return func(s *spec.Service) { s.Restart.Condition = c }
}

func healthcheck() func(*spec.Service) {
	return func(s *spec.Service) { s.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "/app", "-probe"}} }
}

func dependsOn(service string, c spec.DependencyCondition) func(*spec.Service) {
	return func(s *spec.Service) {
		s.DependsOn = append(s.DependsOn, spec.Dependency{Service: service, Condition: c, Required: true})
	}
}

// project is the project "demo" of svcs (sorted by name, as spec keeps them)
// with its default network and a volume "data".
func project(svcs ...spec.Service) spec.Project {
	slices.SortFunc(svcs, func(a, b spec.Service) int { return strings.Compare(a.Name, b.Name) })
	return spec.Project{
		Name:     "demo",
		Services: svcs,
		Networks: []spec.Network{{Key: "default", Name: "demo_default"}},
		Volumes:  []spec.Volume{{Key: "data", Name: "demo_data"}},
	}
}
