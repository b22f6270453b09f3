package supervisor_test

import (
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/supervisor"
)

const engineTimeout = "Health check exceeded timeout (1s)"

// TestTimedOutCheckOfAnAnsweringReplica: on a loaded host the engine's exec
// checks time out on every replica at once. A replica that answers requests
// through the proxy meanwhile is kept in rotation and not replaced, and the
// journal says why; one that answers nothing is replaced; a check that fails
// with an answer of its own (not a timeout) is believed either way.
func TestTimedOutCheckOfAnAnsweringReplica(t *testing.T) {
	h := newHarness(t)
	f := &figures{answered: map[string]time.Duration{}}
	h.sup = supervisor.New(supervisor.Config{Runtime: h.rt, Store: h.st, Clock: h.clk, Traffic: f})
	h.start()
	h.up(project(service("web", replicas(2), healthcheck(), published, func(s *spec.Service) { s.Healthcheck.Timeout = time.Second })))
	busy, hung := h.waitSeen("web", 1), h.waitSeen("web", 2)
	must(t, h.rt.SetHealth(busy, runtime.HealthHealthy))
	must(t, h.rt.SetHealth(hung, runtime.HealthHealthy))
	eventually(t, "both ready", func() bool { return h.replica("web", 1).Ready && h.replica("web", 2).Ready })

	f.mu.Lock()
	f.answered[busy] = 150 * time.Millisecond
	f.answered[hung] = 4 * time.Second // longer ago than the check's timeout
	f.mu.Unlock()
	must(t, h.rt.SetHealthResult(busy, runtime.HealthUnhealthy, engineTimeout))
	must(t, h.rt.SetHealthResult(hung, runtime.HealthUnhealthy, engineTimeout))

	e := h.waitEntry(match{action: "inconclusive", reason: "answering", service: "web", slot: 1}, 1)
	if want := "health check timed out (" + engineTimeout + ") but it answered a request 150ms ago; kept in rotation, not replaced"; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
	h.waitEntry(match{action: "replace", reason: "unhealthy", service: "web", slot: 2}, 1)
	for range 10 {
		h.clk.Advance(500 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	if r := h.replica("web", 1); !r.Ready {
		t.Errorf("the answering replica: %+v, want %s ready", r, busy)
	}
	if n := len(h.entries(match{action: "replace", reason: "unhealthy", service: "web", slot: 1})); n != 0 {
		t.Fatalf("the answering replica was replaced:\n%s", h.journal())
	}
	if n := len(h.entries(match{action: "inconclusive", reason: "answering", service: "web", slot: 1})); n != 1 {
		t.Errorf("%d inconclusive entries for slot 1, want 1 for the episode", n)
	}

	must(t, h.rt.SetHealthResult(busy, runtime.HealthUnhealthy, "exit 1: database unreachable"))
	h.waitEntry(match{action: "replace", reason: "unhealthy", service: "web", slot: 1}, 1)
}

func published(s *spec.Service) {
	s.Ports = []spec.Port{{HostIP: "127.0.0.1", HostPort: 18091, ContainerPort: 8080, Protocol: "tcp"}}
}
