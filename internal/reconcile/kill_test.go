package reconcile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// A kill from outside after a healthy run restarts at once and ends the
// streak; every other exit, killed or not, keeps the crash rules.
func TestKilledFromOutside(t *testing.T) {
	s := time.Second
	web := service("web") // backoff 1s doubling, reset after 10s
	k := key("web", 1)
	streak := []time.Time{at(s), at(2 * s), at(4 * s)} // three crashes, then a run that became ready
	hist := func(h reconcile.History) map[reconcile.SlotKey]reconcile.History {
		h.Container = "web1"
		return map[reconcile.SlotKey]reconcile.History{k: h}
	}
	healthy := hist(reconcile.History{Streak: streak, Restarts: 3, ReadyRun: at(4 * s)})
	// killed is web/1's run from +4s ended at +7s with code, with opts.
	killed := func(svc spec.Service, code int, opts ...func(*runtime.Container)) []runtime.Container {
		return []runtime.Container{ctr(svc, 1, runtime.Exited, append([]func(*runtime.Container){ran(at(4*s), at(7*s), code)}, opts...)...)}
	}
	oom := func(c *runtime.Container) { c.OOMKilled = true }
	heldExit := func(c *runtime.Container) { c.Held = true }
	counted := func(note string) func(t *testing.T, r reconcile.Result) {
		return func(t *testing.T, r reconcile.Result) {
			unchangedHistory(t, r)
			if len(r.Waits) == 1 && !strings.Contains(r.Waits[0].Message, note) {
				t.Errorf("wait %q does not say %q", r.Waits[0].Message, note)
			}
		}
	}
	runPlanCases(t, []planCase{
		{
			name:       "docker kill after a healthy run restarts at once and ends the streak",
			desired:    project(web),
			containers: killed(web, 137),
			history:    healthy,
			now:        at(7 * s),
			want:       []string{"restart web/1 web1 exited"},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "web1", Restarts: 4, ReadyRun: at(4 * s)})
				wantWake(t, r, time.Time{})
				want := "exited with code 137 after 3s: killed from outside (signal 9) after a healthy run; not counted as a crash, restarting at once"
				if m := messageOf(t, r); m != want {
					t.Errorf("message %q, want %q", m, want)
				}
			},
		},
		{
			name:       "docker stop (SIGTERM) after a healthy run is the same",
			desired:    project(web),
			containers: killed(web, 143),
			history:    healthy,
			now:        at(7 * s),
			want:       []string{"restart web/1 web1 exited"},
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "web1", Restarts: 4, ReadyRun: at(4 * s)})
			},
		},
		{
			name:       "a kill does not use up max_attempts",
			desired:    project(service("web", maxAttempts(3, 0))),
			containers: killed(service("web", maxAttempts(3, 0)), 137),
			history:    healthy,
			now:        at(7 * s),
			want:       []string{"restart web/1 web1 exited"},
		},
		{
			name:       "restart on-failure restarts a kill at once too",
			desired:    project(service("web", restart(spec.RestartOnFailure))),
			containers: killed(service("web", restart(spec.RestartOnFailure)), 137),
			history:    healthy,
			now:        at(7 * s),
			want:       []string{"restart web/1 web1 exited"},
		},
		{
			name:       "restart none leaves a killed job as it is",
			desired:    project(service("job", restart(spec.RestartNone))),
			containers: []runtime.Container{ctr(service("job", restart(spec.RestartNone)), 1, runtime.Exited, ran(at(4*s), at(7*s), 137))},
			history:    map[reconcile.SlotKey]reconcile.History{key("job", 1): {Container: "job1", ReadyRun: at(4 * s)}},
			now:        at(7 * s),
			want:       []string{"settle job/1 job1 completed"},
		},
		{
			name:       "an OOM kill after a healthy run is a crash",
			desired:    project(web),
			containers: killed(web, 137, oom),
			history:    healthy,
			now:        at(7 * s),
			waits:      []string{"web/1: restart 4 in"},
			check:      counted("(killed by the kernel's OOM killer)"),
		},
		{
			name:       "a kill before tend saw the run ready is a crash",
			desired:    project(web),
			containers: killed(web, 137),
			history:    hist(reconcile.History{Streak: streak, Restarts: 3, ReadyRun: at(2 * s)}), // an earlier run was ready
			now:        at(7 * s),
			waits:      []string{"web/1: restart 4 in"},
			check:      counted("(killed by signal 9 before it was ready: counted as a crash)"),
		},
		{
			name:       "a kill within backoff.initial of the start is a crash",
			desired:    project(web),
			containers: []runtime.Container{ctr(web, 1, runtime.Exited, ran(at(4*s), at(4*s+900*time.Millisecond), 137))},
			history:    healthy,
			now:        at(5 * s),
			waits:      []string{"web/1: restart 4 in"},
			check:      counted("(killed by signal 9 only 900ms after it started: counted as a crash)"),
		},
		{
			name:       "a command killed inside its container (held by the shim) is a crash",
			desired:    project(web),
			containers: killed(web, 137, heldExit),
			history:    healthy,
			now:        at(7 * s),
			waits:      []string{"web/1: restart 4 in"},
			check:      counted("(killed by signal 9 inside its container: counted as a crash)"),
		},
		{
			name:       "a crash after a healthy run is a crash",
			desired:    project(web),
			containers: killed(web, 1),
			history:    healthy,
			now:        at(7 * s),
			waits:      []string{"web/1: restart 4 in"},
			check:      counted("exited with code 1 after 3s; restart 4 in"),
		},
		{
			name:       "a fault signal (SIGSEGV) after a healthy run is a crash",
			desired:    project(web),
			containers: killed(web, 139),
			history:    healthy,
			now:        at(7 * s),
			waits:      []string{"web/1: restart 4 in"},
			check:      counted("exited with code 139 after 3s; restart 4 in"),
		},
		{
			name:       "a running replica seen ready is remembered by its run",
			desired:    project(web),
			containers: []runtime.Container{ctr(web, 1, runtime.Running, ran(at(4*s), time.Time{}, 0))},
			history:    hist(reconcile.History{Streak: streak, Restarts: 3}),
			health:     map[string]reconcile.Health{"web1": {Ready: true}},
			now:        at(5 * s),
			check: func(t *testing.T, r reconcile.Result) {
				wantHistory(t, r, k, reconcile.History{Container: "web1", Streak: streak, Restarts: 3, ReadyRun: at(4 * s)})
			},
		},
		{
			name:       "a running replica not ready is not",
			desired:    project(web),
			containers: []runtime.Container{ctr(web, 1, runtime.Running, ran(at(4*s), time.Time{}, 0))},
			history:    hist(reconcile.History{Streak: streak, Restarts: 3, ReadyRun: at(2 * s)}),
			health:     map[string]reconcile.Health{"web1": {}},
			now:        at(5 * s),
			check:      unchangedHistory,
		},
		{
			name:       "a run already remembered ready changes nothing",
			desired:    project(web),
			containers: []runtime.Container{ctr(web, 1, runtime.Running, ran(at(4*s), time.Time{}, 0))},
			history:    healthy,
			health:     map[string]reconcile.Health{"web1": {Ready: true}},
			now:        at(5 * s),
			check:      unchangedHistory,
		},
	})
}
