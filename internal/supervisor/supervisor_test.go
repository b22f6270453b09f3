package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// twoServices is api×1 (mounting the volume) and web×2.
func twoServices() spec.Project {
	return project(
		service("api", func(s *spec.Service) {
			s.Mounts = []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/data"}}
			s.StopGracePeriod = 3 * time.Second
		}),
		service("web", replicas(2)),
	)
}

func TestUpCreatesNetworksThenContainers(t *testing.T) {
	h := newHarness(t)
	h.start()
	rec := h.up(twoServices())
	if rec.Version != 1 {
		t.Errorf("first up: version %d, want 1", rec.Version)
	}
	for _, k := range []reconcile.SlotKey{{Service: "api", Slot: 1}, {Service: "web", Slot: 1}, {Service: "web", Slot: 2}} {
		e := h.waitEntry(match{"create", "new", k.Service, k.Slot, false}, 1)
		if !e.Time.Equal(t0) || e.Project != "demo" {
			t.Errorf("create entry %+v, want project demo at the clock's time", e)
		}
	}

	up := h.entries(match{action: "up", reason: "requested"})
	if len(up) != 1 || up[0].Seq != 1 || !strings.Contains(up[0].Message, "version 1: 2 services, 3 replicas") {
		t.Errorf("up entries %+v, want the first entry, naming version 1 with 2 services and 3 replicas", up)
	}
	calls := h.calls(fake.MethodEnsureNetwork, fake.MethodEnsureVolume, fake.MethodCreate)
	if len(calls) < 2 || calls[0] != "EnsureNetwork(demo, demo_default)" || calls[1] != "EnsureVolume(demo, demo_data)" {
		t.Errorf("calls %q: want the network and the volume ensured before any create", calls)
	}
	creates := h.calls(fake.MethodCreate)
	slices.Sort(creates)
	if want := []string{"Create(demo, api, 1)", "Create(demo, web, 1)", "Create(demo, web, 2)"}; !slices.Equal(creates, want) {
		t.Errorf("creates %q, want %q", creates, want)
	}
	for _, k := range []reconcile.SlotKey{{Service: "api", Slot: 1}, {Service: "web", Slot: 1}, {Service: "web", Slot: 2}} {
		r := h.replica(k.Service, k.Slot)
		if r.State != string(runtime.Running) || !r.Ready || r.Failed || r.Container != runtime.ContainerName("demo", k.Service, k.Slot) {
			t.Errorf("replica %s: %+v, want running and ready", k, r)
		}
	}
}

func TestHeal(t *testing.T) {
	tests := []struct {
		name    string
		act     func(rt *fake.Fake, id string) error
		want    match
		message string // part of the entry's message
	}{
		{name: "exit", act: func(rt *fake.Fake, id string) error { return rt.Exit(id, 1) },
			want: match{"restart", "exited", "web", 2, false}, message: "exited with code 1 after 0s; restart 1 of this streak"},
		{name: "clean exit restarts too (condition any)", act: func(rt *fake.Fake, id string) error { return rt.Exit(id, 0) },
			want: match{"restart", "exited", "web", 2, false}, message: "exited with code 0"},
		{name: "removed behind tend's back", act: func(rt *fake.Fake, id string) error { return rt.Delete(id) },
			want: match{"create", "missing", "web", 2, false}, message: "was removed outside tend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.start()
			h.up(twoServices())
			h.waitEntry(match{"create", "new", "web", 2, false}, 1)
			id := h.waitSeen("web", 2)
			others := []string{h.waitSeen("api", 1), h.waitSeen("web", 1)}
			if err := tt.act(h.rt, id); err != nil {
				t.Fatal(err)
			}
			e := h.waitEntry(tt.want, 1)
			if !strings.Contains(e.Message, tt.message) {
				t.Errorf("entry message %q, want it to contain %q", e.Message, tt.message)
			}
			if r := h.replica("web", 2); r.State != string(runtime.Running) || !r.Ready {
				t.Errorf("after healing: %+v, want running and ready", r)
			}
			if n := len(h.calls(fake.MethodCreate)); tt.want.action == "restart" && n != 3 {
				t.Errorf("%d creates, want 3: a restart reuses the container", n)
			}
			if got := []string{h.container("api", 1), h.container("web", 1)}; !slices.Equal(got, others) {
				t.Errorf("the other replicas are %q, were %q", got, others)
			}
			if got := h.calls(fake.MethodStop, fake.MethodRemove); len(got) != 0 {
				t.Errorf("calls %q: nothing is stopped or removed to heal", got)
			}
			if starts := len(h.calls(fake.MethodStart)); starts != 4 {
				t.Errorf("%d starts, want 4: 3 at creation and 1 to heal", starts)
			}
		})
	}
}

func TestUpInvalid(t *testing.T) {
	tests := []struct {
		name   string
		change func(*spec.Project)
	}{
		{name: "no name", change: func(p *spec.Project) { p.Name = "" }},
		{name: "uppercase name", change: func(p *spec.Project) { p.Name = "Demo" }},
		{name: "no image", change: func(p *spec.Project) { p.Services[0].Image = "" }},
		{name: "negative replicas", change: func(p *spec.Project) { p.Services[0].Replicas = -1 }},
		{name: "no network", change: func(p *spec.Project) { p.Services[0].Networks = nil }},
		{name: "undeclared network", change: func(p *spec.Project) { p.Services[0].Networks[0].Network = "edge" }},
		{name: "unknown dependency", change: func(p *spec.Project) { dependsOn("nope", spec.ServiceStarted)(&p.Services[0]) }},
		{name: "no backoff", change: func(p *spec.Project) { p.Services[0].Tend = spec.Extension{} }},
		{name: "bad restart condition", change: func(p *spec.Project) { p.Services[0].Restart.Condition = "sometimes" }},
		{name: "services out of order", change: func(p *spec.Project) { p.Services[0], p.Services[1] = p.Services[1], p.Services[0] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := twoServices()
			tt.change(&p)
			_, err := h.sup.Up(context.Background(), p)
			if errs.KindOf(err) != errs.Invalid {
				t.Fatalf("err = %v (%s), want invalid", err, errs.KindOf(err))
			}
			if recs, _ := h.st.Projects(); len(recs) != 0 {
				t.Errorf("an invalid project was stored: %+v", recs)
			}
			if j, _ := h.st.Journal(store.Query{}); len(j) != 0 {
				t.Errorf("an invalid project was journaled: %+v", j)
			}
		})
	}
}

func TestFailedStartOfNewContainer(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.rt.FailNext(fake.MethodStart, errors.New("boom"))
	h.up(project(service("web")))
	e := h.waitEntry(match{"create", "new", "web", 1, true}, 1)
	if !strings.Contains(e.Error, "boom") {
		t.Errorf("create entry error %q, want the start's error", e.Error)
	}
	// The container was made; after the failure's backoff the next pass starts it
	// rather than making another.
	eventually(t, "the start after the backoff", func() bool {
		if len(h.entries(match{"start", "not-started", "web", 1, false})) > 0 {
			return true
		}
		h.clk.Advance(50 * time.Millisecond)
		return false
	})
	if n := len(h.calls(fake.MethodCreate)); n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
}

func TestFailedRestartBacksOff(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.up(project(service("web")))
	h.waitEntry(match{"create", "new", "web", 1, false}, 1)
	id := h.container("web", 1)

	h.rt.FailNext(fake.MethodStart, errors.New("boom"))
	if err := h.rt.Exit(id, 1); err != nil {
		t.Fatal(err)
	}
	failed := h.waitEntry(match{"restart", "exited", "web", 1, true}, 1)
	if !strings.Contains(failed.Error, "boom") {
		t.Errorf("restart entry error %q, want the start's error", failed.Error)
	}
	// The loop now waits out the backoff: 500ms ±10%, both for the failed action
	// and for the second restart of the streak.
	eventually(t, "the backoff to be noted", func() bool {
		note := h.replica("web", 1).Note
		return strings.Contains(note, "retrying in") && strings.Contains(note, "boom")
	})
	if n := len(h.entries(match{"restart", "exited", "web", 1, false})); n != 0 {
		t.Fatalf("restarted again before the clock moved:\n%s", h.journal())
	}

	const step = 50 * time.Millisecond
	eventually(t, "the retry", func() bool {
		if len(h.entries(match{"restart", "exited", "web", 1, false})) > 0 {
			return true
		}
		h.clk.Advance(step)
		return false
	})
	ok := h.entries(match{"restart", "exited", "web", 1, false})[0]
	// The clock moves in steps while the test polls, so only the lower bound is exact.
	svc := service("web")
	backoff := reconcile.Backoff(svc.Restart, svc.Tend.Backoff, 1, "web/1")
	if wait := ok.Time.Sub(failed.Time); wait < backoff {
		t.Errorf("retried %s after the failed restart, before the backoff of %s", wait, backoff)
	}
	if want := fmt.Sprintf("restart 2 of this streak (backoff %s)", backoff.Round(time.Millisecond)); !strings.Contains(ok.Message, want) {
		t.Errorf("retry message %q, want it to contain %q", ok.Message, want)
	}
	if c, _ := h.rt.Container(id); c.State != runtime.Running {
		t.Errorf("after the retry: %+v, want running", c)
	}
	if r := h.replica("web", 1); r.Restarts != 2 {
		t.Errorf("restarts %d, want 2 (the failed attempt counts)", r.Restarts)
	}
}

func TestEventStreamReconnects(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.up(project(service("web")))
	h.waitEntry(match{"create", "new", "web", 1, false}, 1)
	id := h.container("web", 1)

	// The stream is opened beside the loop, perhaps after the creates; break it once it is open.
	eventually(t, "the event stream to open", func() bool { return len(h.calls(fake.MethodEvents)) == 1 })
	lost := errors.New("connection lost")
	h.rt.FailNext(fake.MethodEvents, lost) // the first reconnect fails too
	h.rt.BreakEvents(lost)
	// Reconnects wait 100ms, then 200ms, on the supervisor's clock.
	eventually(t, "two reconnects", func() bool {
		if len(h.calls(fake.MethodEvents)) >= 3 {
			return true
		}
		h.clk.Advance(20 * time.Millisecond)
		return false
	})
	if moved := h.clk.Now().Sub(t0); moved < 300*time.Millisecond {
		t.Errorf("reconnected twice after %s on the clock, want at least 100ms + 200ms of backoff", moved)
	}

	// The clock stands still from here: no resync comes due, so only an event
	// on the new stream can wake the loop.
	if err := h.rt.Exit(id, 1); err != nil {
		t.Fatal(err)
	}
	h.waitEntry(match{"restart", "exited", "web", 1, false}, 1)
}

func TestStatus(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.up(project(
		service("db", healthcheck()),
		service("migrate", restart(spec.RestartNone)),
		service("seed", restart(spec.RestartNone)),
		service("api", dependsOn("db", spec.ServiceHealthy), dependsOn("migrate", spec.ServiceCompletedSuccessfully)),
	))
	for _, s := range []string{"db", "migrate", "seed"} {
		h.waitEntry(match{"create", "new", s, 1, false}, 1)
	}
	// The first pass, before db existed, noted "waiting for db to start"; a later one sees it run.
	const note = "waiting for db to be healthy (demo-db-1 is running, starting)"
	eventually(t, "api to note its wait for db's health", func() bool { return h.replica("api", 1).Note == note })
	if api := h.replica("api", 1); api.State != "pending" || api.Ready || api.Failed || api.Container != "" {
		t.Errorf("api waiting: %+v, want pending", api)
	}
	if db := h.replica("db", 1); db.State != "running" || db.Health != "starting" || db.Ready {
		t.Errorf("db with its check starting: %+v, want running, not ready", db)
	}

	db, migrate, seed := h.container("db", 1), h.container("migrate", 1), h.container("seed", 1)
	must(t, h.rt.SetHealth(db, runtime.HealthHealthy))
	must(t, h.rt.Exit(migrate, 0))
	must(t, h.rt.Exit(seed, 2))
	h.waitEntry(match{"completed", "completed", "migrate", 1, false}, 1)
	h.waitEntry(match{"completed", "completed", "seed", 1, false}, 1)
	h.waitEntry(match{"create", "new", "api", 1, false}, 1)

	tests := []struct {
		service string
		want    func(r supervisor.Replica) bool
		what    string
	}{
		{"api", func(r supervisor.Replica) bool { return r.State == "running" && r.Ready && !r.Failed && r.Note == "" },
			"running, ready, no note"},
		{"db", func(r supervisor.Replica) bool { return r.Health == "healthy" && r.Ready && !r.Failed }, "healthy and ready"},
		{"migrate", func(r supervisor.Replica) bool { return r.State == "exited" && r.ExitCode == 0 && r.Ready && !r.Failed },
			"a job that completed: ready"},
		{"seed", func(r supervisor.Replica) bool { return r.State == "exited" && r.ExitCode == 2 && !r.Ready && r.Failed },
			"a job that failed: failed, not ready"},
	}
	for _, tt := range tests {
		if r := h.replica(tt.service, 1); !tt.want(r) {
			t.Errorf("%s: %+v, want %s", tt.service, r, tt.what)
		}
	}
	if n := len(h.calls(fake.MethodCreate)); n != 4 {
		t.Errorf("%d creates, want 4: finished jobs are not run again", n)
	}
}

// TestQuarantineAndHeal: a compose max_attempts is the quarantine's budget;
// once it is spent the slot is not restarted, and `tend heal` lifts it.
func TestQuarantineAndHeal(t *testing.T) {
	h := newHarness(t)
	h.start()
	p := project(service("web", func(s *spec.Service) { s.Restart.MaxAttempts = 1 }))
	h.up(p)
	h.waitEntry(match{"create", "new", "web", 1, false}, 1)
	id := h.container("web", 1)
	must(t, h.rt.Exit(id, 1))
	h.waitEntry(match{"restart", "exited", "web", 1, false}, 1)
	must(t, h.rt.Exit(id, 1))
	h.waitEntry(match{"quarantine", "repairs-failed", "web", 0, false}, 1)
	h.waitEntry(match{"gave-up", "max-attempts", "web", 1, false}, 1) // the compose budget, journaled as before
	if r := h.replica("web", 1); r.State != "exited" || r.Quarantine != "quarantined" || r.NextTrial.IsZero() || r.Ready {
		t.Errorf("quarantined: %+v, want state quarantined with a next trial", r)
	}
	if _, err := h.sup.Heal(context.Background(), p.Name, "web"); err != nil {
		t.Fatal(err)
	}
	h.waitEntry(match{"restore", "heal", "web", 0, false}, 1)
	h.waitEntry(match{"restart", "exited", "web", 1, false}, 2)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// An engine call that keeps failing (a missing image, say) is retried with
// backoff, not in a loop that floods the journal.
func TestFailingCreateIsNoHotLoop(t *testing.T) {
	h := newHarness(t)
	for range 50 {
		h.rt.FailNext(fake.MethodCreate, errors.New("no such image"))
	}
	h.start()
	h.up(project(service("web")))
	h.waitEntry(match{"create", "new", "web", 1, true}, 1)
	time.Sleep(300 * time.Millisecond) // real time passes, the fake clock does not
	if n := len(h.calls(fake.MethodCreate)); n != 1 {
		t.Fatalf("%d creates with the clock frozen, want 1 then a wait:\n%s", n, h.journal())
	}
	eventually(t, "the wait to show the error", func() bool {
		return strings.Contains(h.replica("web", 1).Note, "no such image")
	})
	// Each retry waits longer: 500ms, 1s, 2s (±10%).
	h.clk.Advance(550 * time.Millisecond)
	h.waitEntry(match{"create", "new", "web", 1, true}, 2)
	h.clk.Advance(550 * time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	if n := len(h.calls(fake.MethodCreate)); n != 2 {
		t.Errorf("%d creates 1.1s in, want 2 (the third waits about 1s after the second)", n)
	}
}

// A replica paused behind tend's back answers nothing, its checks cannot run
// and the engine never thaws it: tend unpauses it, in place (issue 20).
func TestPausedReplicaIsUnpaused(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.up(twoServices())
	h.waitEntry(match{"create", "new", "web", 2, false}, 1)
	id := h.waitSeen("web", 2)
	if err := h.rt.Pause(id); err != nil {
		t.Fatal(err)
	}
	e := h.waitEntry(match{"unpause", "paused", "web", 2, false}, 1)
	if !strings.Contains(e.Message, "was paused outside tend") {
		t.Errorf("entry message %q, want it to say the replica was paused outside tend", e.Message)
	}
	eventually(t, "web/2 running and ready again", func() bool {
		r := h.replica("web", 2)
		return r.State == string(runtime.Running) && r.Ready && r.Container != "" && h.container("web", 2) == id
	})
	if got := h.calls(fake.MethodStop, fake.MethodRemove, fake.MethodCreate); len(got) != 3 {
		t.Errorf("calls %q: want only the 3 creates of up, nothing stopped, removed or made anew", got)
	}
	if got := h.calls(fake.MethodUnpause); len(got) != 1 {
		t.Errorf("unpause calls %q, want 1", got)
	}
}

// `docker rm -f` kills before it removes: the restart the die asks for finds
// the container being removed. That restart did not happen and is not
// journaled; the create that replaces the container is the slot's next entry.
func TestRestartOfAContainerBeingRemovedIsNotJournaled(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.up(project(service("web")))
	h.waitEntry(match{"create", "new", "web", 1, false}, 1)
	id := h.container("web", 1)
	starts := len(h.calls(fake.MethodStart))

	h.rt.FailNext(fake.MethodStart, errs.E(errs.NotFound, "start %s: container is marked for removal and cannot be started", id))
	if err := h.rt.Exit(id, 137); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the restart tried", func() bool { return len(h.calls(fake.MethodStart)) > starts })
	if err := h.rt.Delete(id); err != nil {
		t.Fatal(err)
	}
	h.waitEntry(match{"create", "missing", "web", 1, false}, 1)
	for _, a := range []string{"restart", "start"} {
		for _, failed := range []bool{false, true} {
			if es := h.entries(match{a, "exited", "web", 1, failed}); len(es) != 0 {
				t.Errorf("journaled %s of a container being removed:\n%s", a, h.journal())
			}
		}
	}
}
