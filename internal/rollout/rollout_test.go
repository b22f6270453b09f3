package rollout

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func service(image string, replicas int) spec.Service {
	return spec.Service{Name: "web", Image: image, Replicas: replicas, Restart: spec.RestartPolicy{Condition: spec.RestartAny}}
}

// world is a service's containers as a rollout changes them: actions take
// effect at once, a new container is running and not ready until made so.
type world struct {
	t        *testing.T
	svc      spec.Service // desired
	versions []Version
	cs       []runtime.Container
	health   map[string]reconcile.Health
	proven   map[string]bool
	figures  map[int]Figures
	st       State
	now      time.Time
	seq      int
	journal  []string
}

func newWorld(t *testing.T, old spec.Service) *world {
	w := &world{t: t, svc: old, versions: []Version{{1, old}}, health: map[string]reconcile.Health{}, proven: map[string]bool{}, now: t0}
	for n := 1; n <= old.Replicas; n++ {
		id := w.add(old, n, runtime.ContainerName("demo", "web", n))
		w.health[id] = reconcile.Health{Ready: true}
	}
	return w
}

func (w *world) add(svc spec.Service, slot int, name string) string {
	w.seq++
	id := fmt.Sprintf("c%d", w.seq)
	w.cs = append(w.cs, runtime.Container{ID: id, Name: name, Project: "demo", Service: "web", Slot: slot, Hash: svc.Hash(),
		State: runtime.Running, Created: w.now, StartedAt: w.now})
	return id
}

func (w *world) up(svc spec.Service) {
	w.svc = svc
	w.versions = append([]Version{{len(w.versions) + 1, svc}}, w.versions...)
}

func (w *world) find(id string) *runtime.Container {
	for i := range w.cs {
		if w.cs[i].ID == id {
			return &w.cs[i]
		}
	}
	w.t.Fatalf("no container %s", id)
	return nil
}

func (w *world) remove(id string) {
	for i := range w.cs {
		if w.cs[i].ID == id {
			w.cs = append(w.cs[:i], w.cs[i+1:]...)
			return
		}
	}
}

// pass plans once and carries the plan out.
func (w *world) pass() Plan {
	p := Decide(Observed{Project: "demo", Service: &w.svc, Versions: w.versions, Containers: w.cs, Health: w.health, Proven: w.proven, Figures: w.figures}, w.st, w.now)
	if p.Revert != nil {
		w.up(p.Revert.Service)
	}
	w.st = p.State
	for _, e := range p.Events {
		w.journal = append(w.journal, e.Action+" "+e.Reason)
	}
	for _, a := range p.Actions {
		switch a.Kind {
		case reconcile.Surge:
			w.add(w.svc, a.Slot, runtime.SurgeName("demo", &w.svc, a.Slot))
		case reconcile.Takeover:
			w.remove(a.Container)
			w.find(a.Surge).Name = runtime.ContainerName("demo", "web", a.Slot)
		case reconcile.Replace:
			w.remove(a.Container)
			w.add(w.svc, a.Slot, runtime.ContainerName("demo", "web", a.Slot))
		case reconcile.Remove:
			w.remove(a.Container)
		case reconcile.Start:
			w.find(a.Container).State = runtime.Running
		default:
			w.t.Fatalf("unexpected action %+v", a)
		}
	}
	return p
}

// readyAll makes every running container ready.
func (w *world) readyAll() {
	for _, c := range w.cs {
		if c.State == runtime.Running && !w.health[c.ID].Sick {
			w.health[c.ID] = reconcile.Health{Ready: true}
			w.proven[c.ID] = true
		}
	}
}

func (w *world) hashes() string {
	var out []string
	for n := 1; n <= w.svc.Replicas; n++ {
		for _, c := range w.cs {
			if c.Slot == n {
				out = append(out, fmt.Sprintf("%d:%s", n, c.Hash[:4]))
			}
		}
	}
	return strings.Join(out, " ")
}

func (w *world) onHash(h string) int {
	n := 0
	for _, c := range w.cs {
		if c.Hash == h {
			n++
		}
	}
	return n
}

// run passes, making new replicas ready and advancing the clock, until the
// rollout is done or rounds run out.
func (w *world) run(rounds int, each func()) {
	for range rounds {
		w.pass()
		if !w.st.Active() {
			return
		}
		if each != nil {
			each()
		}
		w.readyAll()
		w.now = w.now.Add(time.Second)
	}
}

func TestGoodRolloutReplacesOneReplicaAtATimeStartFirst(t *testing.T) {
	old, next := service("demo:1", 3), service("demo:2", 3)
	w := newWorld(t, old)
	w.up(next)
	maxRunning := 0
	w.run(60, func() {
		maxRunning = max(maxRunning, len(w.cs))
		if n := w.onHash(next.Hash()); n > 0 && w.onHash(old.Hash())+n < 3 {
			t.Fatalf("fewer than 3 replicas during the rollout: %s", w.hashes())
		}
	})
	if w.st.Active() || w.onHash(next.Hash()) != 3 || len(w.cs) != 3 {
		t.Fatalf("not rolled out: %s, state %+v", w.hashes(), w.st)
	}
	if maxRunning != 4 {
		t.Errorf("at most %d containers at once, want 4 (one new next to three old)", maxRunning)
	}
	if w.st.Step != 3 {
		t.Errorf("steps = %d, want 3", w.st.Step)
	}
	want := "rollout started,rollout-step step,rollout-step step,rollout-step step,rollout done"
	if got := strings.Join(w.journal, ","); got != want {
		t.Errorf("journal:\n got %s\nwant %s", got, want)
	}
	// The monitor period holds each step: three steps of at least 5s each.
	if took := w.st.Done.Sub(w.st.Started); took < 3*spec.DefaultMonitor {
		t.Errorf("took %s, want at least 3 monitor periods", took)
	}
}

func TestOldReplicasArePinnedToTheirSpec(t *testing.T) {
	old, next := service("demo:1", 2), service("demo:2", 2)
	w := newWorld(t, old)
	w.up(next)
	p := w.pass()
	if len(p.Pins) != 1 || p.Pins[2] == nil || p.Pins[2].Hash() != old.Hash() {
		t.Fatalf("pins = %v, want slot 2 on the old spec", p.Pins)
	}
	if !p.Owned[1] || p.Owned[2] {
		t.Errorf("owned = %v, want slot 1 only", p.Owned)
	}
}

func TestNewReplicaThatExitsRollsBack(t *testing.T) {
	old, next := service("demo:1", 3), service("demo:2", 3)
	w := newWorld(t, old)
	w.up(next)
	w.pass() // step 1: a new replica next to web-1
	surge := w.cs[len(w.cs)-1]
	c := w.find(surge.ID)
	c.State, c.ExitCode, c.FinishedAt = runtime.Exited, 1, c.StartedAt.Add(50*time.Millisecond)
	w.now = w.now.Add(time.Second)
	p := w.pass()
	if p.Revert == nil || p.Revert.Service.Hash() != old.Hash() || !p.Hold {
		t.Fatalf("plan = %+v, want a revert to the old spec", p)
	}
	if !w.st.Rollback || w.st.Target != old.Hash() || !strings.HasPrefix(w.st.Failure, "exited: exited with code 1") {
		t.Errorf("state = %+v", w.st)
	}
	w.run(30, nil)
	if w.onHash(old.Hash()) != 3 || len(w.cs) != 3 || w.st.Active() {
		t.Fatalf("not back on the old spec: %s, %+v", w.hashes(), w.st)
	}
	if got := w.journal[len(w.journal)-1]; got != "rollback done" {
		t.Errorf("last journal entry %q, want rollback done", got)
	}
}

func TestNewReplicaThatFallsSickDuringMonitorRollsBack(t *testing.T) {
	old, next := service("demo:1", 3), service("demo:2", 3)
	w := newWorld(t, old)
	w.up(next)
	var sick string
	for range 40 {
		w.pass()
		if w.st.Rollback {
			break
		}
		w.readyAll()
		for _, c := range w.cs {
			if c.Hash == next.Hash() && c.Name == "demo-web-1" && w.st.Step == 2 && sick == "" {
				sick = c.ID
				w.health[c.ID] = reconcile.Health{Sick: true, Cause: reconcile.ReasonLiveness, Detail: "liveness probe failed 3 times: HTTP 503: sick"}
			}
		}
		w.now = w.now.Add(time.Second)
	}
	if !w.st.Rollback || !strings.Contains(w.st.Failure, "liveness") {
		t.Fatalf("no rollback after web-1 fell sick: %+v", w.st)
	}
	w.run(40, nil)
	if w.onHash(old.Hash()) != 3 || len(w.cs) != 3 {
		t.Fatalf("not back: %s", w.hashes())
	}
}

func TestSlowerNewReplicaRollsBack(t *testing.T) {
	old, next := service("demo:1", 3), service("demo:2", 3)
	w := newWorld(t, old)
	w.up(next)
	w.figures = map[int]Figures{1: {Requests: 300, P95: 22 * time.Millisecond}, 2: {Requests: 300, P95: 21 * time.Millisecond},
		3: {Requests: 300, P95: 23 * time.Millisecond}}
	for range 20 {
		w.pass()
		if w.st.Rollback {
			break
		}
		w.readyAll()
		if w.onHash(next.Hash()) == 1 && len(w.cs) == 3 {
			w.figures[1] = Figures{Requests: 40, P95: 210 * time.Millisecond}
		}
		w.now = w.now.Add(time.Second)
	}
	if !w.st.Rollback || !strings.HasPrefix(w.st.Failure, "latency: p95 210ms over 40 requests, the old replicas 23ms") {
		t.Fatalf("state = %+v", w.st)
	}
}

func TestFiguresNeedEnoughRequests(t *testing.T) {
	for _, c := range []struct {
		name     string
		new, old Figures
		check    string
	}{
		{"same", Figures{Requests: 100, P95: 20 * time.Millisecond}, Figures{Requests: 300, P95: 20 * time.Millisecond}, ""},
		{"slow", Figures{Requests: 100, P95: 200 * time.Millisecond}, Figures{Requests: 300, P95: 20 * time.Millisecond}, "latency"},
		{"slow but few requests", Figures{Requests: 5, P95: 200 * time.Millisecond}, Figures{Requests: 300, P95: 20 * time.Millisecond}, ""},
		{"3x of a fast service is noise", Figures{Requests: 100, P95: 3 * time.Millisecond}, Figures{Requests: 300, P95: time.Millisecond}, ""},
		{"errors", Figures{Requests: 100, Errors: 30}, Figures{Requests: 300, Errors: 1}, "error-ratio"},
		{"as many errors as the old", Figures{Requests: 100, Errors: 10}, Figures{Requests: 300, Errors: 30}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			check, _, _ := worse(c.new, c.old)
			if check != c.check {
				t.Errorf("check = %q, want %q", check, c.check)
			}
		})
	}
}

func TestStopFirstReplacesInPlace(t *testing.T) {
	old, next := service("demo:1", 2), service("demo:2", 2)
	next.Rollout.Update.Order = spec.StopFirst
	w := newWorld(t, old)
	w.up(next)
	p := w.pass()
	if len(p.Actions) != 1 || p.Actions[0].Kind != reconcile.Replace || p.Actions[0].Slot != 1 {
		t.Fatalf("actions = %+v, want one replace of slot 1", p.Actions)
	}
	w.run(30, func() {
		if len(w.cs) > 2 {
			t.Fatalf("more than 2 containers stop-first: %s", w.hashes())
		}
	})
	if w.onHash(next.Hash()) != 2 || w.st.Active() {
		t.Fatalf("not rolled out: %s", w.hashes())
	}
}

func TestParallelismAndFailurePause(t *testing.T) {
	old, next := service("demo:1", 4), service("demo:2", 4)
	next.Rollout.Update = spec.Update{Parallelism: 2, FailureAction: spec.ActionPause}
	w := newWorld(t, old)
	w.up(next)
	p := w.pass()
	if len(p.Actions) != 2 {
		t.Fatalf("actions = %+v, want two surges", p.Actions)
	}
	surge := w.cs[len(w.cs)-1]
	// Sick before it was ever ready: still starting, not failed.
	w.health[surge.ID] = reconcile.Health{Sick: true, Cause: reconcile.ReasonUnhealthy, Detail: "health check failed: 503"}
	if p = w.pass(); w.st.Paused || len(p.Actions) != 0 {
		t.Fatalf("a starting replica failed: %+v, %+v", w.st, p.Actions)
	}
	w.proven[surge.ID] = true // it was ready once, and fell sick
	p = w.pass()
	if !w.st.Paused || p.Revert != nil {
		t.Fatalf("state = %+v, want paused", w.st)
	}
	if w.onHash(old.Hash()) != 4 {
		t.Errorf("old replicas: %s", w.hashes())
	}
	// Paused: nothing moves until a new spec or a rollback.
	before := len(w.cs)
	w.now = w.now.Add(time.Minute)
	w.readyAll()
	for range 5 {
		w.pass()
	}
	if len(w.cs) != before+0 && w.onHash(next.Hash()) > 1 {
		t.Errorf("paused rollout moved on: %s", w.hashes())
	}
}

func TestUpDuringRolloutSupersedesIt(t *testing.T) {
	v1, v2, v3 := service("demo:1", 3), service("demo:2", 3), service("demo:3", 3)
	w := newWorld(t, v1)
	w.up(v2)
	for range 7 { // step 1 done, step 2 under way
		w.pass()
		w.readyAll()
		w.now = w.now.Add(time.Second)
	}
	w.up(v3)
	p := w.pass()
	if w.st.Target != v3.Hash() || w.st.From != v1.Hash() || !strings.Contains(strings.Join(w.journal, ","), "rollout superseded") {
		t.Fatalf("state = %+v, journal %v", w.st, w.journal)
	}
	_ = p
	w.run(60, nil)
	if w.onHash(v3.Hash()) != 3 || len(w.cs) != 3 {
		t.Fatalf("not on v3: %s", w.hashes())
	}
}

func TestRevertNotStoredYetIsARollback(t *testing.T) {
	// tend died after storing the revert, before the rollback's state.
	old, next := service("demo:1", 2), service("demo:2", 2)
	w := newWorld(t, old)
	w.up(next)
	w.pass()
	w.readyAll()
	w.pass() // web-1 taken over
	w.up(old)
	w.pass()
	if !w.st.Rollback || w.st.Target != old.Hash() || w.st.From != next.Hash() {
		t.Fatalf("state = %+v, want a rollback", w.st)
	}
}

func TestRequestedRollbackBegins(t *testing.T) {
	old, next := service("demo:1", 2), service("demo:2", 2)
	w := newWorld(t, next)
	w.versions = []Version{{2, next}, {1, old}}
	w.up(old)
	w.st = State{Target: old.Hash(), From: next.Hash(), Rollback: true}
	w.run(30, nil)
	if w.onHash(old.Hash()) != 2 || w.journal[0] != "rollback started" || w.journal[len(w.journal)-1] != "rollback done" {
		t.Fatalf("%s, journal %v", w.hashes(), w.journal)
	}
}

func TestFirstUpIsNoRollout(t *testing.T) {
	svc := service("demo:1", 2)
	p := Decide(Observed{Project: "demo", Service: &svc}, State{}, t0)
	if p.State.Active() || len(p.Actions) > 0 || len(p.Events) > 0 {
		t.Fatalf("plan = %+v", p)
	}
}

func TestNewReplicaNotReadyByTheDeadlineRollsBack(t *testing.T) {
	old, next := service("demo:1", 2), service("demo:2", 2)
	w := newWorld(t, old)
	w.up(next)
	p := w.pass()
	if len(p.Actions) != 1 || p.Actions[0].Kind != reconcile.Surge {
		t.Fatalf("actions = %+v", p.Actions)
	}
	w.now = w.now.Add(spec.ReadyDeadline - time.Second)
	if p = w.pass(); p.Revert != nil || p.Wake.After(w.now.Add(time.Second)) {
		t.Fatalf("failed before the deadline, or no wake at it: %+v", p)
	}
	w.now = w.now.Add(time.Second)
	if p = w.pass(); p.Revert == nil || !strings.HasPrefix(w.st.Failure, "not-ready: not ready within 30s") {
		t.Fatalf("no rollback at the deadline: %+v", w.st)
	}
}

func TestUnknownSpecIsRolledNotPinned(t *testing.T) {
	old, next := service("demo:1", 2), service("demo:2", 2)
	w := newWorld(t, old)
	w.versions = nil // no kept version holds the old spec
	w.up(next)
	p := w.pass()
	if len(p.Pins) != 0 || !p.Owned[2] {
		t.Fatalf("pins %v, owned %v: want slot 2 owned, nothing pinned", p.Pins, p.Owned)
	}
	w.run(40, nil)
	if w.onHash(next.Hash()) != 2 || len(w.cs) != 2 {
		t.Fatalf("not rolled: %s", w.hashes())
	}
}

func TestOneSlowWindowIsNoVerdict(t *testing.T) {
	old, next := service("demo:1", 3), service("demo:2", 3)
	w := newWorld(t, old)
	w.up(next)
	w.figures = map[int]Figures{1: {Requests: 300, P95: 20 * time.Millisecond}, 2: {Requests: 300, P95: 20 * time.Millisecond},
		3: {Requests: 300, P95: 20 * time.Millisecond}}
	spiked := false
	w.run(60, func() {
		if w.onHash(next.Hash()) == 1 && len(w.cs) == 3 && !spiked {
			w.figures[1] = Figures{Requests: 40, P95: 210 * time.Millisecond} // one pass only
			spiked = true
		} else {
			w.figures[1] = Figures{Requests: 300, P95: 21 * time.Millisecond}
		}
	})
	if !spiked || w.st.Rollback || w.onHash(next.Hash()) != 3 {
		t.Fatalf("spiked %v, state %+v, %s", spiked, w.st, w.hashes())
	}
}
