package supervisor_test

import (
	"context"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// advanceUntil moves the fake clock in small steps until cond holds.
func (h *harness) advanceUntil(what string, cond func() bool) {
	h.t.Helper()
	eventually(h.t, what, func() bool {
		if cond() {
			return true
		}
		h.clk.Advance(100 * time.Millisecond)
		return false
	})
}

// hashes counts the project's containers by spec hash, and all of them.
func (h *harness) hashes() (map[string]int, int) {
	cs, err := h.rt.List(context.Background(), "demo")
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range cs {
		out[c.Hash]++
	}
	return out, len(cs)
}

// TestRolloutStartFirstThenRollsBackAnExit: a changed image rolls out one
// replica at a time, never more than one container above the count; a
// release whose replica exits is rolled back to the stored previous spec.
func TestRolloutStartFirstThenRollsBackAnExit(t *testing.T) {
	h := newHarness(t)
	h.start()
	v1 := project(service("web", replicas(2)))
	h.up(v1)
	h.waitSeen("web", 1)
	h.waitSeen("web", 2)

	v2 := project(service("web", replicas(2), func(s *spec.Service) { s.Image = "web:2" }))
	h.up(v2)
	h.waitEntry(match{action: "rollout", reason: "started", service: "web"}, 1)
	most := 0
	h.advanceUntil("the rollout done", func() bool {
		_, n := h.hashes()
		most = max(most, n)
		return len(h.entries(match{action: "rollout", reason: "done", service: "web"})) == 1
	})
	if most > 3 {
		t.Errorf("%d containers at once, want at most 3 (start-first, one at a time)", most)
	}
	if by, n := h.hashes(); n != 2 || by[v2.Services[0].Hash()] != 2 {
		t.Fatalf("after the rollout: %v, want 2 on v2\n%s", by, h.journal())
	}
	if got := len(h.entries(match{action: "takeover", reason: "rollout", service: "web", slot: 2})); got != 1 {
		t.Errorf("%d takeovers of web/2, want 1", got)
	}

	// v3's replica exits: the service goes back to v2.
	v3 := project(service("web", replicas(2), func(s *spec.Service) { s.Image = "web:3" }))
	h.up(v3)
	h.advanceUntil("a new replica of v3", func() bool {
		by, _ := h.hashes()
		return by[v3.Services[0].Hash()] > 0
	})
	cs, _ := h.rt.List(context.Background(), "demo")
	for _, c := range cs {
		if c.Hash == v3.Services[0].Hash() && c.State == runtime.Running {
			if err := h.rt.Exit(c.ID, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.waitEntry(match{action: "rollback", reason: "exited", service: "web", slot: 1}, 1)
	h.advanceUntil("the rollback done", func() bool {
		return len(h.entries(match{action: "rollback", reason: "done", service: "web"})) == 1
	})
	if by, n := h.hashes(); n != 2 || by[v2.Services[0].Hash()] != 2 {
		t.Fatalf("after the rollback: %v, want 2 on v2\n%s", by, h.journal())
	}
	rec, err := h.st.Project("demo")
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Project.Services[0].Image; got != "web:2" {
		t.Errorf("desired image after the rollback %q, want web:2 (a new version of the old spec)", got)
	}
}

// TestRollbackByHandNeedsAnEarlierSpec: tend rollback of a service that never
// ran another spec is a conflict; of an unknown service, not found.
func TestRollbackByHandNeedsAnEarlierSpec(t *testing.T) {
	h := newHarness(t)
	h.up(project(service("web")))
	_, err := h.sup.Rollback(context.Background(), "demo", "web")
	if errs.KindOf(err) != errs.Conflict {
		t.Errorf("rollback with no earlier spec: %v, want a conflict", err)
	}
	if _, err := h.sup.Rollback(context.Background(), "demo", "nosuch"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("rollback of an unknown service: %v, want not found", err)
	}
}
