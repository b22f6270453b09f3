package reconcile_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

func TestRestartConditions(t *testing.T) {
	var cases []planCase
	for _, tc := range []struct {
		cond    spec.Condition
		code    int
		restart bool
	}{
		{spec.RestartAny, 0, true},
		{spec.RestartAny, 1, true},
		{spec.RestartOnFailure, 0, false},
		{spec.RestartOnFailure, 2, true},
		{spec.RestartNone, 0, false},
		{spec.RestartNone, 1, false},
	} {
		web := service("web", restart(tc.cond))
		c := exited(web, 1, tc.code, t0, at(time.Minute))
		k := key("web", 1)
		pc := planCase{
			desired:    project(web),
			containers: []runtime.Container{c},
			history:    map[reconcile.SlotKey]reconcile.History{k: {Container: c.ID}},
			now:        at(time.Minute),
		}
		if tc.restart {
			pc.name = string(tc.cond) + " restarts exit " + strconv.Itoa(tc.code)
			pc.want = []string{"restart web/1 web1 exited"}
			pc.check = func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: c.ID, Streak: []time.Time{at(time.Minute)}, Restarts: 1})
			}
		} else {
			pc.name = string(tc.cond) + " settles exit " + strconv.Itoa(tc.code) + " as done"
			pc.want = []string{"settle web/1 web1 completed"}
			pc.check = func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: c.ID, Settled: c.StartedAt, Done: true})
				if m := messageOf(t, r); !strings.Contains(m, "exited with code "+strconv.Itoa(tc.code)) || !strings.Contains(m, string(tc.cond)) {
					t.Errorf("message %q names neither the exit code nor the condition", m)
				}
			}
		}
		cases = append(cases, pc)
	}
	web := service("web")
	cases = append(cases, planCase{
		name:       "a dead container is restarted like an exited one",
		desired:    project(web),
		containers: []runtime.Container{ctr(web, 1, runtime.Dead, ran(t0, at(time.Minute), 137))},
		now:        at(time.Minute),
		want:       []string{"restart web/1 web1 exited"},
	})
	runPlanCases(t, cases)
}

// The restarts of a crash streak: immediate, then backoff, reset by a long run.
func TestRestartStreak(t *testing.T) {
	web := service("web")
	k := key("web", 1)
	b := func(n int) time.Duration { return reconcile.Backoff(web.Restart, web.Tend.Backoff, n, k.String()) }
	hist := func(h reconcile.History) map[reconcile.SlotKey]reconcile.History {
		h.Container = "web1"
		return map[reconcile.SlotKey]reconcile.History{k: h}
	}
	streak := func(ds ...time.Duration) []time.Time {
		out := make([]time.Time, len(ds))
		for i, d := range ds {
			out[i] = at(d)
		}
		return out
	}
	s := time.Second
	runPlanCases(t, []planCase{
		{
			name:       "first restart of a streak is immediate",
			desired:    project(web),
			containers: []runtime.Container{exited(web, 1, 1, t0, at(2*s))},
			history:    hist(reconcile.History{}),
			now:        at(2 * s),
			want:       []string{"restart web/1 web1 exited"},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "web1", Streak: streak(2 * s), Restarts: 1})
				wantWake(t, r, time.Time{})
				if m := messageOf(t, r); !strings.Contains(m, "exited with code 1 after 2s") || !strings.Contains(m, "restart 1 of this streak") {
					t.Errorf("message %q", m)
				}
			},
		},
		{
			name:       "second restart waits for the backoff",
			desired:    project(web),
			containers: []runtime.Container{exited(web, 1, 1, at(2*s), at(3*s))},
			history:    hist(reconcile.History{Streak: streak(2 * s), Restarts: 1}),
			now:        at(3 * s),
			waits:      []string{"web/1: restart 2 in"},
			check: func(t *testing.T, r reconcile.Result) {
				unchangedHistory(t, r)
				wantWake(t, r, at(3*s).Add(b(1)))
				if !r.Waits[0].Until.Equal(r.Wake) {
					t.Errorf("wait until %s, wake at %s", since(r.Waits[0].Until), since(r.Wake))
				}
			},
		},
		{
			name:       "second restart once the backoff has passed",
			desired:    project(web),
			containers: []runtime.Container{exited(web, 1, 1, at(2*s), at(3*s))},
			history:    hist(reconcile.History{Streak: streak(2 * s), Restarts: 1}),
			now:        at(3 * s).Add(b(1)),
			want:       []string{"restart web/1 web1 exited"},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "web1", Streak: []time.Time{at(2 * s), at(3 * s).Add(b(1))}, Restarts: 2})
				if m := messageOf(t, r); !strings.Contains(m, "restart 2 of this streak") {
					t.Errorf("message %q", m)
				}
			},
		},
		{
			name:       "a run shorter than reset_after keeps the streak",
			desired:    project(web),
			containers: []runtime.Container{exited(web, 1, 1, at(10*s), at(19*s))},
			history:    hist(reconcile.History{Streak: streak(2*s, 4*s, 10*s), Restarts: 3}),
			now:        at(19 * s),
			waits:      []string{"web/1: restart 4 in"},
			check: func(t *testing.T, r reconcile.Result) {
				wantWake(t, r, at(19*s).Add(b(3)))
			},
		},
		{
			name:       "a run longer than reset_after starts a new streak",
			desired:    project(web),
			containers: []runtime.Container{exited(web, 1, 1, at(10*s), at(20*s))},
			history:    hist(reconcile.History{Streak: streak(2*s, 4*s, 10*s), Restarts: 3}),
			now:        at(20 * s),
			want:       []string{"restart web/1 web1 exited"},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "web1", Streak: streak(20 * s), Restarts: 4})
			},
		},
		{
			// The engine leaves FinishedAt as it was when a start fails: the
			// wait runs from the failed restart, or tend would retry in a hot loop.
			name:       "a restart that failed to start waits from the restart",
			desired:    project(web),
			containers: []runtime.Container{exited(web, 1, 1, t0, at(2*s))},
			history:    hist(reconcile.History{Streak: streak(2*s, 5*s), Restarts: 2}),
			now:        at(5*s + 500*time.Millisecond),
			waits:      []string{"web/1: restart 3 in"},
			check: func(t *testing.T, r reconcile.Result) {
				wantWake(t, r, at(5*s).Add(b(2)))
			},
		},
		{
			// The long run ended the old streak once, at the first restart
			// after it; it must not end the new one again at every pass.
			name:       "a failed start after a long run does not reset the streak again",
			desired:    project(web),
			containers: []runtime.Container{exited(web, 1, 1, t0, at(20*s))},
			history:    hist(reconcile.History{Streak: streak(20 * s), Restarts: 1}),
			now:        at(20*s + 100*time.Millisecond),
			waits:      []string{"web/1: restart 2 in"},
			check: func(t *testing.T, r reconcile.Result) {
				wantWake(t, r, at(20*s).Add(b(1)))
			},
		},
		{
			name:       "a failed start at the instant of the exit does not reset the streak",
			desired:    project(web),
			containers: []runtime.Container{exited(web, 1, 1, t0, at(20*s))},
			history:    hist(reconcile.History{Streak: streak(20 * s), Restarts: 1}),
			now:        at(20 * s),
			waits:      []string{"web/1: restart 2 in"},
		},
	})
}

func TestMaxAttempts(t *testing.T) {
	k := key("web", 1)
	s, m, h := time.Second, time.Minute, time.Hour
	streak := func(ds ...time.Duration) []time.Time {
		out := make([]time.Time, len(ds))
		for i, d := range ds {
			out[i] = at(d)
		}
		return out
	}
	hist := func(h reconcile.History) map[reconcile.SlotKey]reconcile.History {
		h.Container = "web1"
		return map[reconcile.SlotKey]reconcile.History{k: h}
	}
	noWindow := service("web", maxAttempts(3, 0))
	window := service("web", maxAttempts(3, time.Minute))
	runPlanCases(t, []planCase{
		{
			name:       "gives up when the attempts are used",
			desired:    project(noWindow),
			containers: []runtime.Container{exited(noWindow, 1, 1, at(8*s), at(9*s))},
			history:    hist(reconcile.History{Streak: streak(s, 2*s, 4*s), Restarts: 3}),
			now:        at(9 * s),
			want:       []string{"settle web/1 web1 max-attempts"},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "web1", Streak: streak(s, 2*s, 4*s), Restarts: 3,
					Settled: at(8 * s), GaveUp: true})
				if msg := messageOf(t, r); !strings.Contains(msg, "gave up after 3 restarts (max_attempts 3)") {
					t.Errorf("message %q", msg)
				}
				wantWake(t, r, time.Time{})
			},
		},
		{
			name:       "one attempt left restarts",
			desired:    project(noWindow),
			containers: []runtime.Container{exited(noWindow, 1, 1, at(4*s), at(9*s))},
			history:    hist(reconcile.History{Streak: streak(s, 4*s), Restarts: 2}),
			now:        at(20 * s), // past the backoff
			want:       []string{"restart web/1 web1 exited"},
		},
		{
			name:       "window: restarts in the window count",
			desired:    project(window),
			containers: []runtime.Container{exited(window, 1, 1, at(33*s), at(38*s))},
			history:    hist(reconcile.History{Streak: streak(30*s, 31*s, 33*s), Restarts: 3}),
			now:        at(40 * s),
			want:       []string{"settle web/1 web1 max-attempts"},
			check: func(t *testing.T, r reconcile.Result) {
				if msg := messageOf(t, r); !strings.Contains(msg, "gave up after 3 restarts within 1m0s (max_attempts 3)") {
					t.Errorf("message %q", msg)
				}
			},
		},
		{
			name:       "window: restarts older than the window do not count",
			desired:    project(window),
			containers: []runtime.Container{exited(window, 1, 1, at(70*s), at(71*s))},
			history:    hist(reconcile.History{Streak: streak(0, s, 70*s), Restarts: 3}),
			now:        at(80 * s),
			want:       []string{"restart web/1 web1 exited"},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "web1", Streak: streak(0, s, 70*s, 80*s), Restarts: 4})
			},
		},
		{
			name:       "window 0 counts the whole streak",
			desired:    project(noWindow),
			containers: []runtime.Container{exited(noWindow, 1, 1, at(2*h), at(2*h+s))},
			history:    hist(reconcile.History{Streak: streak(0, h, 2*h), Restarts: 3}),
			now:        at(2*h + m),
			want:       []string{"settle web/1 web1 max-attempts"},
		},
		{
			name:       "the same streak within a 1m window restarts",
			desired:    project(window),
			containers: []runtime.Container{exited(window, 1, 1, at(2*h), at(2*h+s))},
			history:    hist(reconcile.History{Streak: streak(0, h, 2*h), Restarts: 3}),
			now:        at(2*h + m),
			want:       []string{"restart web/1 web1 exited"},
		},
		{
			name:       "an exit already settled as given up yields no action",
			desired:    project(noWindow),
			containers: []runtime.Container{exited(noWindow, 1, 1, at(8*s), at(9*s))},
			history:    hist(reconcile.History{Streak: streak(s, 2*s, 4*s), Restarts: 3, Settled: at(8 * s), GaveUp: true}),
			now:        at(h),
			waits:      []string{"web/1: gave up after 3 restarts"},
			check: func(t *testing.T, r reconcile.Result) {
				unchangedHistory(t, r)
				wantWake(t, r, time.Time{})
			},
		},
		{
			name:       "a long run after giving up (started by hand) restarts again",
			desired:    project(noWindow),
			containers: []runtime.Container{exited(noWindow, 1, 1, at(h), at(2*h))},
			history:    hist(reconcile.History{Streak: streak(s, 2*s, 4*s), Restarts: 3, Settled: at(8 * s), GaveUp: true}),
			now:        at(2 * h),
			want:       []string{"restart web/1 web1 exited"},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "web1", Streak: streak(2 * h), Restarts: 4, Settled: at(8 * s)})
			},
		},
		{
			name:       "an exit already settled as done yields nothing",
			desired:    project(service("job", restart(spec.RestartOnFailure))),
			containers: []runtime.Container{exited(service("job"), 1, 0, t0, at(5*s))},
			history:    map[reconcile.SlotKey]reconcile.History{key("job", 1): {Container: "job1", Settled: t0, Done: true}},
			now:        at(h),
			check:      unchangedHistory,
		},
	})
}
