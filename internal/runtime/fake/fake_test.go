package fake_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
)

func project() *spec.Project {
	return &spec.Project{
		Name: "demo",
		Services: []spec.Service{
			{Name: "api", Image: "api:dev", Replicas: 1, Healthcheck: &spec.Healthcheck{Test: []string{"CMD", "/app", "-probe"}}},
			{Name: "web", Image: "web:dev", Replicas: 2, Networks: []spec.NetworkAttach{{Network: "default"}}},
		},
		Networks: []spec.Network{{Key: "default", Name: "demo_default"}},
	}
}

// clock is a settable time for the fake.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	p := project()
	web, _ := p.Service("web")
	clk := &clock{now: fake.Epoch}
	rt := fake.New()
	rt.SetClock(clk.Now)

	if _, err := rt.Create(ctx, p, web, runtime.Replica{Slot: 1, Name: "demo-web-1"}); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("create before its network exists: err = %v, want not-found", err)
	}
	if err := rt.EnsureNetwork(ctx, p.Name, p.Networks[0]); err != nil {
		t.Fatal(err)
	}
	id, err := rt.Create(ctx, p, web, runtime.Replica{Slot: 1, Name: "demo-web-1"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := rt.Container(id)
	want := runtime.Container{ID: id, Name: "demo-web-1", Project: "demo", Service: "web", Slot: 1,
		Hash: web.Hash(), State: runtime.Created, Created: fake.Epoch}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("created:\n got %+v\nwant %+v", c, want)
	}

	clk.now = clk.now.Add(time.Second)
	mustDo(t, rt.Start(ctx, id))
	clk.now = clk.now.Add(time.Second)
	mustDo(t, rt.Exit(id, 3))
	c, _ = rt.Container(id)
	if c.State != runtime.Exited || c.ExitCode != 3 || !c.StartedAt.Equal(fake.Epoch.Add(time.Second)) ||
		!c.FinishedAt.Equal(fake.Epoch.Add(2*time.Second)) {
		t.Fatalf("after exit: %+v", c)
	}
	if err := rt.Exit(id, 1); errs.KindOf(err) != errs.Conflict {
		t.Errorf("exit of an exited container: err = %v, want conflict", err)
	}

	clk.now = clk.now.Add(time.Second)
	mustDo(t, rt.Start(ctx, id))
	c, _ = rt.Container(id)
	if c.State != runtime.Running || c.ExitCode != 0 || !c.StartedAt.Equal(clk.now) || !c.FinishedAt.Equal(fake.Epoch.Add(2*time.Second)) {
		t.Fatalf("after restart (exit code resets, FinishedAt stays): %+v", c)
	}

	mustDo(t, rt.Stop(ctx, id, 5*time.Second))
	mustDo(t, rt.Remove(ctx, id))
	mustDo(t, rt.Remove(ctx, id)) // a missing container is not an error
	if cs, _ := rt.List(ctx, "demo"); len(cs) != 0 {
		t.Errorf("after remove: %v", cs)
	}

	wantCalls := []string{
		"Create(demo, web, 1)", "EnsureNetwork(demo, demo_default)", "Create(demo, web, 1)",
		"Start(" + id + ")", "Start(" + id + ")", "Stop(" + id + ", 5s)",
		"Remove(" + id + ")", "Remove(" + id + ")", "List(demo)",
	}
	if got := callStrings(rt.Calls()); !slices.Equal(got, wantCalls) {
		t.Errorf("calls:\n got %q\nwant %q", got, wantCalls)
	}
}

// The two exits the planner tells from a kill from outside: an OOM kill, and
// a held exit (the command's, under tend's shim). A start runs afresh.
func TestOOMKillAndHeldExit(t *testing.T) {
	ctx := t.Context()
	p := project()
	api, _ := p.Service("api")
	rt := fake.New()
	id, _ := rt.Create(ctx, p, api, runtime.Replica{Slot: 1, Name: "demo-api-1"})
	mustDo(t, rt.Start(ctx, id))
	mustDo(t, rt.OOMKill(id))
	if c, _ := rt.Container(id); c.State != runtime.Exited || c.ExitCode != 137 || !c.OOMKilled || c.Held {
		t.Errorf("after an OOM kill: %+v", c)
	}
	mustDo(t, rt.Start(ctx, id))
	if c, _ := rt.Container(id); c.OOMKilled {
		t.Errorf("a new run still says OOM-killed: %+v", c)
	}
	mustDo(t, rt.ExitHeld(id, 137))
	if c, _ := rt.Container(id); c.State != runtime.Exited || c.ExitCode != 137 || !c.Held || c.OOMKilled {
		t.Errorf("after a held exit: %+v", c)
	}
	mustDo(t, rt.Release(ctx, id))
	if c, _ := rt.Container(id); c.Held {
		t.Errorf("a released exit is still held: %+v", c)
	}
}

func TestCreateRefusesATakenName(t *testing.T) {
	ctx := t.Context()
	p := project()
	api, _ := p.Service("api")
	rt := fake.New()
	first, err := rt.Create(ctx, p, api, runtime.Replica{Slot: 1, Name: "demo-api-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Create(ctx, p, api, runtime.Replica{Slot: 1, Name: "demo-api-1"}); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("second create of demo-api-1: err = %v, want conflict", err)
	}
	mustDo(t, rt.Delete(first))
	if _, err := rt.Create(ctx, p, api, runtime.Replica{Slot: 1, Name: "demo-api-1"}); err != nil {
		t.Fatalf("create after the first was deleted: %v", err)
	}
}

func TestFailNext(t *testing.T) {
	ctx := t.Context()
	p := project()
	api, _ := p.Service("api")
	rt := fake.New()
	id, _ := rt.Create(ctx, p, api, runtime.Replica{Slot: 1, Name: "demo-api-1"})
	boom := errors.New("boom")
	rt.FailNext(fake.MethodStart, boom)
	rt.FailNext(fake.MethodStart, boom)
	for i, want := range []error{boom, boom, nil} {
		if err := rt.Start(ctx, id); !errors.Is(err, want) {
			t.Errorf("start %d: err = %v, want %v", i+1, err, want)
		}
	}
	if n := len(rt.Calls()); n != 4 {
		t.Errorf("%d calls recorded, want 4 (failed calls count)", n)
	}
	rt.ResetCalls()
	if n := len(rt.Calls()); n != 0 {
		t.Errorf("%d calls after ResetCalls", n)
	}
}

func TestHealth(t *testing.T) {
	ctx := t.Context()
	p := project()
	api, _ := p.Service("api")
	rt := fake.New()
	id, _ := rt.Create(ctx, p, api, runtime.Replica{Slot: 1, Name: "demo-api-1"})
	if err := rt.SetHealth(id, runtime.HealthHealthy); errs.KindOf(err) != errs.Conflict {
		t.Errorf("health of a created container: err = %v, want conflict", err)
	}
	mustDo(t, rt.Start(ctx, id))
	if c, _ := rt.Container(id); c.Health != runtime.HealthStarting {
		t.Errorf("started with a health check: health %q, want starting", c.Health)
	}
	mustDo(t, rt.SetHealth(id, runtime.HealthUnhealthy))
	if c, _ := rt.Container(id); c.Health != runtime.HealthUnhealthy {
		t.Errorf("health %q, want unhealthy", c.Health)
	}
	if err := rt.SetHealth("nope", runtime.HealthHealthy); errs.KindOf(err) != errs.NotFound {
		t.Errorf("health of a missing container: err = %v, want not-found", err)
	}
}

func TestAddAndList(t *testing.T) {
	rt := fake.New()
	a := rt.Add(runtime.Container{Project: "demo", Service: "web", Slot: 1, State: runtime.Running})
	rt.Add(runtime.Container{ID: "other", Project: "else", Service: "x", Slot: 1, State: runtime.Exited})
	cs, err := rt.List(t.Context(), "demo")
	if err != nil || len(cs) != 1 || cs[0].ID != a || cs[0].Name != "demo-web-1" {
		t.Fatalf("List(demo) = %+v, %v", cs, err)
	}
	if all, _ := rt.List(t.Context(), ""); len(all) != 2 {
		t.Errorf("List(\"\") has %d containers, want 2", len(all))
	}
}

func TestExternalResources(t *testing.T) {
	ctx := t.Context()
	rt := fake.New()
	ext := spec.Network{Key: "edge", Name: "edge", External: true}
	if err := rt.EnsureNetwork(ctx, "demo", ext); err == nil {
		t.Error("a missing external network was ensured")
	}
	rt.AddNetwork("edge")
	mustDo(t, rt.EnsureNetwork(ctx, "demo", ext))
	mustDo(t, rt.RemoveNetwork(ctx, ext)) // external: kept
	mustDo(t, rt.EnsureVolume(ctx, "demo", spec.Volume{Key: "data", Name: "demo_data"}))
	if got := rt.Networks(); !slices.Equal(got, []string{"edge"}) {
		t.Errorf("networks %q", got)
	}
	if got := rt.Volumes(); !slices.Equal(got, []string{"demo_data"}) {
		t.Errorf("volumes %q", got)
	}
}

func TestEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p := project()
	api, _ := p.Service("api")
	rt := fake.New()
	events, errc := rt.Events(ctx)

	id, _ := rt.Create(ctx, p, api, runtime.Replica{Slot: 1, Name: "demo-api-1"})
	mustDo(t, rt.Start(ctx, id))
	mustDo(t, rt.SetHealth(id, runtime.HealthHealthy))
	mustDo(t, rt.Exit(id, 1))
	mustDo(t, rt.Start(ctx, id))
	mustDo(t, rt.Delete(id))

	want := []string{"create", "start", "health_status: healthy", "die", "start", "die", "destroy"}
	for i, w := range want {
		e := <-events
		if e.Action != w || e.Container != id || e.Project != "demo" || e.Service != "api" {
			t.Fatalf("event %d = %+v, want %s of %s", i, e, w, id)
		}
	}
	cancel()
	for range events {
	}
	if err := <-errc; err != nil {
		t.Errorf("stream ended by its context: err = %v, want nil", err)
	}
}

func TestBreakEvents(t *testing.T) {
	ctx := t.Context()
	p := project()
	api, _ := p.Service("api")
	rt := fake.New()
	events, errc := rt.Events(ctx)
	rt.Create(ctx, p, api, runtime.Replica{Slot: 1, Name: "demo-api-1"})
	lost := errors.New("connection lost")
	rt.BreakEvents(lost)
	if e := <-events; e.Action != "create" {
		t.Errorf("queued event %+v, want create", e)
	}
	if _, ok := <-events; ok {
		t.Error("stream still open after BreakEvents")
	}
	if err := <-errc; !errors.Is(err, lost) {
		t.Errorf("err = %v, want %v", err, lost)
	}

	rt.FailNext(fake.MethodEvents, lost)
	_, errc = rt.Events(ctx)
	if err := <-errc; !errors.Is(err, lost) {
		t.Errorf("injected failure: err = %v, want %v", err, lost)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func callStrings(calls []fake.Call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.String()
	}
	return out
}
