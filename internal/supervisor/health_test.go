package supervisor_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
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

// TestHungReplicaIsReplaced: a replica the proxy found hung (requests
// waited on it, it answered none) is taken out of rotation and replaced
// start-first, though it has no check at all and its TCP readiness passes.
func TestHungReplicaIsReplaced(t *testing.T) {
	h := newHarness(t)
	f := &figures{answered: map[string]time.Duration{}, hung: map[string]bool{}}
	h.sup = supervisor.New(supervisor.Config{Runtime: h.rt, Store: h.st, Clock: h.clk, Traffic: f})
	h.start()
	h.up(project(service("web", replicas(2))))
	stuck, fine := h.waitSeen("web", 1), h.waitSeen("web", 2)
	eventually(t, "both ready", func() bool { return h.replica("web", 1).Ready && h.replica("web", 2).Ready })

	f.mu.Lock()
	f.hung[stuck] = true
	f.mu.Unlock()
	h.sup.ProxyEvent(proxy.Event{Kind: proxy.EventEject, Reason: proxy.ReasonHung, Project: "demo", Service: "web", Replica: "web/1", ID: stuck})
	e := h.waitEntry(match{action: "replace", reason: "hung", service: "web", slot: 1}, 1)
	if !strings.Contains(e.Message, "answered none") {
		t.Errorf("replace message %q, want the proxy's evidence", e.Message)
	}
	if r := h.replica("web", 1); r.Ready {
		t.Errorf("the hung replica %+v is ready: it answers no one", r)
	}
	if n := len(h.entries(match{action: "replace", reason: "hung", service: "web", slot: 2})); n != 0 || h.container("web", 2) != fine {
		t.Errorf("the replica that answers was replaced:\n%s", h.journal())
	}
	// Once its replacement is ready, the hung one is killed, not given a
	// grace it cannot use.
	h.waitEntry(match{action: "takeover", reason: "hung", service: "web", slot: 1}, 1)
	if stops := h.calls(fake.MethodStop); !slices.Contains(stops, "Stop("+stuck+", 0s)") {
		t.Errorf("stops %q: want the hung replica killed at once (grace 0s)", stops)
	}
}

// TestServiceThatHangsWholeIsReplacedOnce: when no replica of a service
// answers and the replacement of the hung one hangs too, it is not the
// replica (a database they all wait on, say): no more replacements until
// the service answers again, so no restart storm.
func TestServiceThatHangsWholeIsReplacedOnce(t *testing.T) {
	h := newHarness(t)
	f := &figures{answered: map[string]time.Duration{}, hung: map[string]bool{}}
	h.sup = supervisor.New(supervisor.Config{Runtime: h.rt, Store: h.st, Clock: h.clk, Traffic: f})
	h.start()
	h.up(project(service("web")))
	first := h.waitSeen("web", 1)
	eventually(t, "ready", func() bool { return h.replica("web", 1).Ready })
	hang := func(id string) {
		f.mu.Lock()
		f.hung[id] = true
		f.mu.Unlock()
		h.sup.ProxyEvent(proxy.Event{Kind: proxy.EventEject, Reason: proxy.ReasonHung, Project: "demo", Service: "web", Replica: "web/1", ID: id})
	}
	hang(first)
	h.waitEntry(match{action: "replace", reason: "hung", service: "web", slot: 1}, 1)
	var second string
	eventually(t, "the replacement in the slot", func() bool {
		second = h.container("web", 1)
		h.clk.Advance(100 * time.Millisecond)
		return second != "" && second != first
	})
	hang(second)
	for range 20 {
		h.clk.Advance(500 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(h.entries(match{action: "replace", reason: "hung", service: "web", slot: 1})); n != 1 {
		t.Fatalf("%d replacements for hanging, want 1: the second hang is not the replica's\n%s", n, h.journal())
	}
}
