package supervisor_test

import (
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
)

// TestQuarantineSurvivesRestartAndTrialRestores: a quarantine is stored, so
// a restarted tend keeps the service held (no restart); at the next trial
// the trial slot is restarted, and once it stays ready for the probation the
// service is restored and every slot is repaired.
func TestQuarantineSurvivesRestartAndTrialRestores(t *testing.T) {
	h := newHarness(t)
	h.start()
	p := project(service("web", func(s *spec.Service) {
		s.Replicas = 2
		s.Restart.MaxAttempts = 2
		s.Tend.Quarantine = spec.Quarantine{Retry: time.Minute, Probation: 10 * time.Second}
	}))
	h.up(p)
	h.waitEntry(match{"create", "new", "web", 2, false}, 1)
	for round := 1; round <= 2; round++ {
		for slot := 1; slot <= 2; slot++ {
			must(t, h.rt.Exit(h.container("web", slot), 1))
			if round == 1 {
				h.waitEntry(match{"restart", "exited", "web", slot, false}, 1)
			}
		}
	}
	h.waitEntry(match{"quarantine", "repairs-failed", "web", 0, false}, 1)
	restarts := len(h.calls(fake.MethodStart))

	h.stop()
	h.sup = h.newSupervisor()
	h.start()
	h.waitEntry(match{"adopt", "tend-started", "", 0, false}, 1)
	if r := h.replica("web", 1); r.Quarantine != "quarantined" {
		t.Fatalf("after a restart of tend: %+v, want still quarantined", r)
	}
	if n := len(h.calls(fake.MethodStart)); n != restarts {
		t.Fatalf("%d starts after the restart of tend, want none", n-restarts)
	}
	h.clk.Advance(time.Minute)
	h.sup.Poke()
	h.waitEntry(match{"trial", "retry", "web", 1, false}, 1)
	h.waitEntry(match{"restart", "exited", "web", 1, false}, 2)
	// The probation counts from the pass that first saw the trial replica
	// ready: the clock moves a second at a time until the restore.
	restored := match{"restore", "probation-passed", "web", 0, false}
	eventually(t, "the restore", func() bool {
		if len(h.entries(restored)) > 0 {
			return true
		}
		h.clk.Advance(time.Second)
		h.sup.Poke()
		return false
	})
	h.waitEntry(match{"restart", "exited", "web", 2, false}, 2)
}
