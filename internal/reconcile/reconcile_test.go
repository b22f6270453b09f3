package reconcile_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

type histories = map[reconcile.SlotKey]reconcile.History

func TestSlots(t *testing.T) {
	web3 := service("web", replicas(3))
	web1 := service("web")
	old := service("old")
	runPlanCases(t, []planCase{
		{
			name:    "replicas 3 with none existing creates slots 1 to 3",
			desired: project(web3),
			want:    []string{"create web/1 new", "create web/2 new", "create web/3 new"},
			check: func(t *testing.T, r reconcile.Result) {
				if m := r.Actions[1].Message; m != "replica 2 of 3" {
					t.Errorf("message %q", m)
				}
				unchangedHistory(t, r)
			},
		},
		{
			name:    "scale in from 3 to 1 removes slots 2 and 3",
			desired: project(web1),
			containers: []runtime.Container{
				ctr(web1, 3, runtime.Running), ctr(web1, 1, runtime.Running), ctr(web1, 2, runtime.Exited),
			},
			history: histories{key("web", 1): {Container: "web1"}, key("web", 2): {Container: "web2"}, key("web", 3): {Container: "web3"}},
			want:    []string{"remove web/2 web2 scale-in", "remove web/3 web3 scale-in"},
			check: func(t *testing.T, r reconcile.Result) {
				if _, ok := r.History[key("web", 1)]; ok {
					t.Error("the kept slot's memory changed")
				}
			},
		},
		{
			name:       "slot 0 is outside the design too",
			desired:    project(web1),
			containers: []runtime.Container{ctr(web1, 0, runtime.Running), ctr(web1, 1, runtime.Running)},
			want:       []string{"remove web/0 web0 scale-in"},
		},
		{
			name:       "a service no longer in the spec is removed",
			desired:    project(web1),
			containers: []runtime.Container{ctr(web1, 1, runtime.Running), ctr(old, 1, runtime.Running), ctr(old, 2, runtime.Exited)},
			want:       []string{"remove old/1 old1 not-in-spec", "remove old/2 old2 not-in-spec"},
		},
		{
			name:       "replicas 0 removes every container",
			desired:    project(service("web", replicas(0))),
			containers: []runtime.Container{ctr(web1, 1, runtime.Running)},
			want:       []string{"remove web/1 web1 scale-in"},
		},
		{
			// Removals come first, so names and ports are free for what follows.
			name:       "removals come before the slots' own actions",
			desired:    project(service("api", replicas(1)), web1),
			containers: []runtime.Container{ctr(web1, 2, runtime.Running)},
			want:       []string{"remove web/2 web2 scale-in", "create api/1 new", "create web/1 new"},
		},
	})
}

// A slot that leaves the design and comes back (scale in, then out) starts
// afresh: the plan forgets the memory of slots outside the design.
func TestSlotsOutsideTheDesignAreForgotten(t *testing.T) {
	web := service("web", replicas(1))
	hist := histories{
		key("web", 1): {Container: "web1"},
		key("web", 2): {Container: "web2", Streak: []time.Time{t0}, Restarts: 4, GaveUp: true, Settled: t0},
		key("web", 3): {Container: "web3", Done: true, Settled: t0},
		key("old", 1): {Container: "old1", Restarts: 1},
	}
	r := reconcile.Plan(project(web), reconcile.Observed{
		Containers: []runtime.Container{ctr(web, 1, runtime.Running), ctr(web, 2, runtime.Exited)},
		History:    hist,
	}, t0)
	if got, want := actions(r), []string{"remove web/2 web2 scale-in"}; !slices.Equal(got, want) {
		t.Errorf("actions %q, want %q", got, want)
	}
	for _, k := range []reconcile.SlotKey{key("web", 2), key("web", 3), key("old", 1)} {
		wantHistory(t, r, k, reconcile.History{})
	}
	if _, ok := r.History[key("web", 1)]; ok {
		t.Error("the kept slot's memory changed")
	}

	// Scaled out again: the slots are new, not missing, given up or done.
	remember(hist, r)
	r = reconcile.Plan(project(service("web", replicas(3))), reconcile.Observed{
		Containers: []runtime.Container{ctr(web, 1, runtime.Running)},
		History:    hist,
	}, t0)
	if got, want := actions(r), []string{"create web/2 new", "create web/3 new"}; !slices.Equal(got, want) {
		t.Errorf("after scale out: actions %q, want %q", got, want)
	}
}

func TestAdoption(t *testing.T) {
	web := service("web", replicas(2))
	older := service("web", replicas(2), func(s *spec.Service) { s.Image = "web:0" })
	k := key("web", 1)
	runPlanCases(t, []planCase{
		{
			name:       "running current containers need nothing and are remembered",
			desired:    project(web),
			containers: []runtime.Container{ctr(web, 1, runtime.Running), ctr(web, 2, runtime.Running)},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "web1"})
				wantHistory(t, r, key("web", 2), reconcile.History{Container: "web2"})
				wantWake(t, r, time.Time{})
			},
		},
		{
			name:       "running containers already remembered change nothing",
			desired:    project(web),
			containers: []runtime.Container{ctr(web, 1, runtime.Running), ctr(web, 2, runtime.Running)},
			history:    histories{k: {Container: "web1"}, key("web", 2): {Container: "web2"}},
			check:      unchangedHistory,
		},
		{
			name:    "duplicates: the current running newest is kept",
			desired: project(service("web")),
			containers: []runtime.Container{
				ctr(web, 1, runtime.Running, id("a")),
				ctr(web, 1, runtime.Running, id("b"), func(c *runtime.Container) { c.Created = at(time.Minute) }),
				ctr(older, 1, runtime.Running, id("c"), func(c *runtime.Container) { c.Created = at(2 * time.Minute) }),
				ctr(web, 1, runtime.Exited, id("d"), func(c *runtime.Container) { c.Created = at(3 * time.Minute) }),
			},
			want: []string{"remove web/1 a duplicate", "remove web/1 c duplicate", "remove web/1 d duplicate"},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "b"})
			},
		},
		{
			name:    "duplicates: a current exited one beats an older running one",
			desired: project(service("web")),
			containers: []runtime.Container{
				ctr(older, 1, runtime.Running, id("old")),
				ctr(web, 1, runtime.Exited, id("new"), ran(t0, at(time.Minute), 0)),
			},
			now:  at(time.Minute),
			want: []string{"remove web/1 old duplicate", "restart web/1 new exited"},
		},
		{
			name:       "a container created but never started is started",
			desired:    project(service("web")),
			containers: []runtime.Container{ctr(web, 1, runtime.Created)},
			want:       []string{"start web/1 web1 not-started"},
		},
		{
			name:       "a container of an older spec is replaced",
			desired:    project(service("web")),
			containers: []runtime.Container{ctr(older, 1, runtime.Running)},
			history:    histories{k: {Container: "web1", Settled: t0}},
			want:       []string{"replace web/1 web1 spec-changed"},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{}) // a new container is coming
			},
		},
		{
			name:       "an exited container of an older spec is replaced, not restarted",
			desired:    project(service("web")),
			containers: []runtime.Container{ctr(older, 1, runtime.Exited, ran(t0, at(time.Second), 1))},
			now:        at(time.Second),
			want:       []string{"replace web/1 web1 spec-changed"},
		},
		{
			name:    "a remembered container gone is recreated as missing",
			desired: project(service("web")),
			history: histories{k: {Container: "0123456789abcdef"}},
			want:    []string{"create web/1 missing"},
			check: func(t *testing.T, r reconcile.Result) {
				if m := messageOf(t, r); !strings.Contains(m, "0123456789ab ") {
					t.Errorf("message %q does not name the short ID", m)
				}
				wantHistory(t, r, k, reconcile.History{})
			},
		},
		{
			name:    "a done slot without a container stays done",
			desired: project(service("web", restart(spec.RestartNone))),
			history: histories{k: {Container: "web1", Done: true, Settled: t0}},
			check:   unchangedHistory,
		},
		{
			name:    "a given-up slot without a container waits",
			desired: project(service("web")),
			history: histories{k: {Container: "web1", Streak: []time.Time{t0, t0, t0}, GaveUp: true, Settled: t0}},
			waits:   []string{"web/1: gave up after 3 restarts"},
			check: func(t *testing.T, r reconcile.Result) {
				unchangedHistory(t, r)
				wantWake(t, r, time.Time{})
			},
		},
		{
			// A paused replica answers nothing and the engine never thaws it (issue 20).
			name:       "a paused container is unpaused, a restarting one is the engine's business",
			desired:    project(web),
			containers: []runtime.Container{ctr(web, 1, runtime.Paused), ctr(web, 2, runtime.Restarting)},
			history:    histories{k: {Container: "web1"}, key("web", 2): {Container: "web2"}},
			want:       []string{"unpause web/1 web1 paused"},
			check:      unchangedHistory,
		},
	})
}

func TestDependsOn(t *testing.T) {
	db := service("db")
	web := func(c spec.DependencyCondition) spec.Service { return service("web", dependsOn("db", c)) }
	started, healthy, completed := spec.ServiceStarted, spec.ServiceHealthy, spec.ServiceCompletedSuccessfully
	dbRunning := func(opts ...func(*runtime.Container)) []runtime.Container {
		return []runtime.Container{ctr(db, 1, runtime.Running, opts...)}
	}
	dbDone := histories{key("db", 1): {Container: "db1", Done: true, Settled: t0}} // the run that started at t0
	job := service("db", restart(spec.RestartNone))
	runPlanCases(t, []planCase{
		{
			name:    "service_started: nothing yet, the dependency is created first",
			desired: project(db, web(started)),
			want:    []string{"create db/1 new"},
			waits:   []string{"web/1: waiting for db to start (0 of 1 replicas exist)"},
		},
		{
			name:       "service_started: a created dependency is not started yet",
			desired:    project(db, web(started)),
			containers: []runtime.Container{ctr(db, 1, runtime.Created)},
			want:       []string{"start db/1 db1 not-started"},
			waits:      []string{"web/1: db to start (demo-db-1 is created)"},
		},
		{
			name:       "service_started: a running dependency will do",
			desired:    project(db, web(started)),
			containers: dbRunning(),
			want:       []string{"create web/1 new"},
		},
		{
			name:       "service_started: one that started and exited will do",
			desired:    project(job, web(started)),
			containers: []runtime.Container{exited(job, 1, 1, t0, at(time.Second))},
			history:    dbDone,
			want:       []string{"create web/1 new"},
		},
		{
			name:       "service_started: every replica must exist",
			desired:    project(service("db", replicas(2)), web(started)),
			containers: dbRunning(),
			want:       []string{"create db/2 new"},
			waits:      []string{"web/1: db to start (1 of 2 replicas exist)"},
		},
		{
			name:       "service_healthy: waits while starting",
			desired:    project(db, web(healthy)),
			containers: dbRunning(health(runtime.HealthStarting)),
			waits:      []string{"web/1: waiting for db to be healthy (demo-db-1 is running, starting)"},
		},
		{
			name:       "service_healthy: waits while unhealthy",
			desired:    project(db, web(healthy)),
			containers: dbRunning(health(runtime.HealthUnhealthy)),
			waits:      []string{"web/1: db to be healthy (demo-db-1 is running, unhealthy)"},
		},
		{
			name:       "service_healthy: waits for a dependency without a health check",
			desired:    project(db, web(healthy)),
			containers: dbRunning(),
			waits:      []string{"web/1: db to be healthy (demo-db-1 is running)"},
		},
		{
			name:       "service_healthy: healthy will do",
			desired:    project(db, web(healthy)),
			containers: dbRunning(health(runtime.HealthHealthy)),
			want:       []string{"create web/1 new"},
		},
		{
			name:       "service_completed_successfully: waits while it runs",
			desired:    project(job, web(completed)),
			containers: []runtime.Container{ctr(job, 1, runtime.Running)},
			waits:      []string{"web/1: waiting for db to complete successfully (demo-db-1 is running)"},
		},
		{
			name:       "service_completed_successfully: blocked by a failure",
			desired:    project(job, web(completed)),
			containers: []runtime.Container{exited(job, 1, 3, t0, at(time.Second))},
			history:    dbDone,
			waits:      []string{"web/1: db to complete successfully (demo-db-1 is exited with code 3)"},
			check: func(t *testing.T, r reconcile.Result) {
				wantWake(t, r, time.Time{}) // only a change of db can help
			},
		},
		{
			name:       "service_completed_successfully: exit 0 will do",
			desired:    project(job, web(completed)),
			containers: []runtime.Container{exited(job, 1, 0, t0, at(time.Second))},
			history:    dbDone,
			want:       []string{"create web/1 new"},
		},
		{
			name:    "a dependency scaled to 0 is not waited for",
			desired: project(service("db", replicas(0)), web(healthy)),
			want:    []string{"create web/1 new"},
		},
		{
			name:    "a dependency not in the project is not waited for",
			desired: project(web(healthy)),
			want:    []string{"create web/1 new"},
		},
		{
			// depends_on orders start-up only: a slot that has had a container
			// is healed without waiting.
			name:       "a missing container is recreated without waiting for deps",
			desired:    project(db, web(healthy)),
			containers: dbRunning(health(runtime.HealthUnhealthy)),
			history:    histories{key("web", 1): {Container: "web-old"}},
			want:       []string{"create web/1 missing"},
		},
		{
			name:       "an exited dependent restarts without waiting for deps",
			desired:    project(db, web(healthy)),
			containers: []runtime.Container{ctr(db, 1, runtime.Running, health(runtime.HealthUnhealthy)), exited(service("web"), 1, 1, t0, at(time.Second))},
			now:        at(time.Second),
			want:       []string{"restart web/1 web1 exited"},
		},
	})
}
