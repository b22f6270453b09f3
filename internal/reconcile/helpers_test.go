package reconcile_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// t0 is the start of every test's timeline; at(d) is d later.
var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// service is a service of one replica, restarted on any exit, with a backoff
// of 1s doubling to 1m, reset after 10s of running; opts change it.
func service(name string, opts ...func(*spec.Service)) spec.Service {
	s := spec.Service{
		Name:     name,
		Image:    name + ":1",
		Replicas: 1,
		Restart:  spec.RestartPolicy{Condition: spec.RestartAny},
		Tend: spec.Extension{Backoff: spec.Backoff{
			Initial: time.Second, Max: time.Minute, ResetAfter: 10 * time.Second,
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

func maxAttempts(n int, window time.Duration) func(*spec.Service) {
	return func(s *spec.Service) { s.Restart.MaxAttempts, s.Restart.Window = n, window }
}

func dependsOn(service string, c spec.DependencyCondition) func(*spec.Service) {
	return func(s *spec.Service) {
		s.DependsOn = append(s.DependsOn, spec.Dependency{Service: service, Condition: c, Required: true})
	}
}

// project is the project "demo" of svcs, sorted by name as spec keeps them.
func project(svcs ...spec.Service) *spec.Project {
	slices.SortFunc(svcs, func(a, b spec.Service) int { return strings.Compare(a.Name, b.Name) })
	return &spec.Project{Name: "demo", Services: svcs}
}

// ctr is replica slot of svc from its current spec, in state, with the ID
// "<service><slot>" and created at t0; opts change it.
func ctr(svc spec.Service, slot int, state runtime.State, opts ...func(*runtime.Container)) runtime.Container {
	c := runtime.Container{
		ID:      fmt.Sprintf("%s%d", svc.Name, slot),
		Name:    runtime.ContainerName("demo", svc.Name, slot),
		Project: "demo",
		Service: svc.Name,
		Slot:    slot,
		Hash:    svc.Hash(),
		State:   state,
		Created: t0,
	}
	if state != runtime.Created {
		c.StartedAt = t0
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func id(id string) func(*runtime.Container) { return func(c *runtime.Container) { c.ID = id } }

func health(h runtime.Health) func(*runtime.Container) {
	return func(c *runtime.Container) { c.Health = h }
}

// ran sets when the container's last run started and ended, and its exit code.
func ran(started, finished time.Time, code int) func(*runtime.Container) {
	return func(c *runtime.Container) { c.StartedAt, c.FinishedAt, c.ExitCode = started, finished, code }
}

// exited is replica slot of svc that ran from started to finished and exited with code.
func exited(svc spec.Service, slot int, code int, started, finished time.Time) runtime.Container {
	return ctr(svc, slot, runtime.Exited, ran(started, finished, code))
}

func key(service string, slot int) reconcile.SlotKey {
	return reconcile.SlotKey{Service: service, Slot: slot}
}

// actions renders a plan's actions as "kind service/slot [container] reason".
func actions(r reconcile.Result) []string {
	out := []string{}
	for _, a := range r.Actions {
		s := fmt.Sprintf("%s %s/%d", a.Kind, a.Service, a.Slot)
		if a.Container != "" {
			s += " " + a.Container
		}
		out = append(out, s+" "+string(a.Reason))
	}
	return out
}

// planCase is one named case of a table test of Plan.
type planCase struct {
	name       string
	desired    *spec.Project
	containers []runtime.Container
	history    map[reconcile.SlotKey]reconcile.History
	health     map[string]reconcile.Health // by container ID
	now        time.Time

	want []string // actions, as rendered by actions
	// waits are "service/slot: text", text being part of the wait's message.
	waits []string
	// check, if set, makes further checks of the result.
	check func(t *testing.T, r reconcile.Result)
}

func runPlanCases(t *testing.T, cases []planCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			r := reconcile.Plan(tc.desired, reconcile.Observed{Containers: tc.containers, History: tc.history, Health: tc.health}, now)
			if got := actions(r); !slices.Equal(got, tc.want) {
				t.Errorf("actions:\n got %q\nwant %q", got, tc.want)
			}
			checkWaits(t, r, tc.waits)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func checkWaits(t *testing.T, r reconcile.Result, want []string) {
	t.Helper()
	if len(r.Waits) != len(want) {
		t.Errorf("waits: got %d %+v, want %d %q", len(r.Waits), r.Waits, len(want), want)
		return
	}
	for i, w := range r.Waits {
		slot, text, _ := strings.Cut(want[i], ": ")
		if got := fmt.Sprintf("%s/%d", w.Service, w.Slot); got != slot || !strings.Contains(w.Message, text) {
			t.Errorf("wait %d: got %s %q, want %s with %q", i, got, w.Message, slot, text)
		}
	}
}

// wantHistory checks that the plan hands back h as the memory of slot k.
func wantHistory(t *testing.T, r reconcile.Result, k reconcile.SlotKey, h reconcile.History) {
	t.Helper()
	got, ok := r.History[k]
	if !ok {
		t.Errorf("history of %s unchanged, want %+v", k, h)
		return
	}
	if !got.Equal(h) {
		t.Errorf("history of %s:\n got %+v\nwant %+v", k, got, h)
	}
}

// unchangedHistory checks that the plan leaves every slot's memory as it was.
func unchangedHistory(t *testing.T, r reconcile.Result) {
	t.Helper()
	if len(r.History) != 0 {
		t.Errorf("history changed: %+v", r.History)
	}
}

func wantWake(t *testing.T, r reconcile.Result, want time.Time) {
	t.Helper()
	if !r.Wake.Equal(want) {
		t.Errorf("wake at %s, want %s", since(r.Wake), since(want))
	}
}

// since renders a time of the test's timeline as an offset from t0.
func since(tm time.Time) string {
	if tm.IsZero() {
		return "never"
	}
	return "+" + tm.Sub(t0).String()
}

// messageOf returns the message of the plan's only action.
func messageOf(t *testing.T, r reconcile.Result) string {
	t.Helper()
	if len(r.Actions) != 1 {
		t.Fatalf("want one action, got %q", actions(r))
	}
	return r.Actions[0].Message
}

// remember keeps the memory a plan hands back, as the store does: a zero
// History deletes the slot's.
func remember(hist map[reconcile.SlotKey]reconcile.History, r reconcile.Result) {
	for k, h := range r.History {
		if h.Equal(reconcile.History{}) {
			delete(hist, k)
		} else {
			hist[k] = h
		}
	}
}
