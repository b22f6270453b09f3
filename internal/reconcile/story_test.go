package reconcile_test

import (
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// A replica that crashes a second after every start, planned as the
// supervisor does: on each exit (the engine's die event) and at each Wake,
// with the memory of one pass fed to the next. Its restarts follow the backoff
// and it gives up at max_attempts.
func TestCrashLoopStory(t *testing.T) {
	const run, attempts = time.Second, 6
	web := service("web", maxAttempts(attempts, 0), func(s *spec.Service) { s.Tend.Backoff.Max = 8 * time.Second })
	p := project(web)
	k := key("web", 1)
	backoff := func(n int) time.Duration { return reconcile.Backoff(web.Restart, web.Tend.Backoff, n, k.String()) }

	c := exited(web, 1, 1, t0, t0.Add(run))
	hist := histories{k: {Container: c.ID}}
	now := c.FinishedAt
	var restarts []time.Time
	gaveUp := false
	for pass := 0; pass < 100 && !gaveUp; pass++ {
		r := reconcile.Plan(p, reconcile.Observed{Containers: []runtime.Container{c}, History: hist}, now)
		remember(hist, r)
		switch got := actions(r); {
		case len(got) == 0:
			if r.Wake.IsZero() || !r.Wake.After(now) {
				t.Fatalf("pass %d at %s: no action and wake at %s", pass, since(now), since(r.Wake))
			}
			now = r.Wake
		case got[0] == "restart web/1 web1 exited":
			restarts = append(restarts, now)
			c.State, c.StartedAt, c.ExitCode = runtime.Running, now, 0
			// It crashes a second later; the die event wakes the planner.
			now = now.Add(run)
			c.State, c.FinishedAt, c.ExitCode = runtime.Exited, now, 1
		case got[0] == "settle web/1 web1 max-attempts":
			gaveUp = true
		default:
			t.Fatalf("pass %d at %s: unexpected %q", pass, since(now), got)
		}
	}
	if !gaveUp {
		t.Fatalf("did not give up; restarts at %v", restarts)
	}
	if len(restarts) != attempts {
		t.Fatalf("%d restarts before giving up, want %d", len(restarts), attempts)
	}
	// Each restart comes when the previous run's exit plus the backoff is due.
	exit := t0.Add(run)
	for n, at := range restarts {
		if want := exit.Add(backoff(n)); !at.Equal(want) {
			t.Errorf("restart %d at %s, want %s (exit %s + backoff %s)", n+1, since(at), since(want), since(exit), backoff(n))
		}
		exit = at.Add(run)
	}
	if h := hist[k]; !h.GaveUp || h.Restarts != attempts || !h.Settled.Equal(c.StartedAt) {
		t.Errorf("memory after giving up: %+v", h)
	}

	// Given up, it stays quiet: no action, no wake, whatever the time.
	r := reconcile.Plan(p, reconcile.Observed{Containers: []runtime.Container{c}, History: hist}, now.Add(24*time.Hour))
	if len(r.Actions) != 0 || !r.Wake.IsZero() || len(r.Waits) != 1 {
		t.Errorf("after giving up: actions %q, wake %s, waits %+v", actions(r), since(r.Wake), r.Waits)
	}
	unchangedHistory(t, r)
}
