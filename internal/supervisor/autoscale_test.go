package supervisor_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/scale"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// figures is a proxy that only reports what a test sets.
type figures struct {
	mu       sync.Mutex
	recent   proxy.Traffic
	answered map[string]time.Duration // how long ago each container answered; absent: never
	hung     map[string]bool
}

func (f *figures) Hung(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hung[id]
}

func (f *figures) Answered(id string) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ago, ok := f.answered[id]
	return ago, ok
}

func (f *figures) Sync([]proxy.Route) error      { return nil }
func (f *figures) Drain(context.Context, string) {}
func (f *figures) Stats() []proxy.ServiceStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []proxy.ServiceStats{{Project: "demo", Service: "web", Recent: f.recent}}
}

func autoscaled(s *spec.Service) {
	s.Ports = []spec.Port{{HostIP: "127.0.0.1", HostPort: 18090, ContainerPort: 8080, Protocol: "tcp"}}
	s.Tend.Autoscale = &spec.Autoscale{Min: 1, Max: 4, P95: 50 * time.Millisecond, Interval: time.Second,
		UpStabilization: 2 * time.Second, DownStabilization: 15 * time.Second, MaxStep: 4, Cooldown: 3 * time.Second}
}

// tick moves the fake clock half a second at a time, for at most span of
// fake time, until cond holds.
func (h *harness) tick(t *testing.T, span time.Duration, what string, cond func() bool) {
	t.Helper()
	for range int(span / (500 * time.Millisecond)) {
		if cond() {
			return
		}
		h.clk.Advance(500 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("not %s after %s of fake time:\n%s", what, span, h.journal())
}

func (h *harness) running(service string) int {
	n := 0
	cs, _ := h.rt.List(context.Background(), "demo")
	for _, c := range cs {
		if c.Service == service && c.State == runtime.Running {
			n++
		}
	}
	return n
}

// TestAutoscaleTriesAndGoesBackWhereItDoesNotHelp: a service slow whatever
// its load (200 ms at any count) is scaled out once, for latency, then
// brought back with no-effect; the count survives a restart of tend.
func TestAutoscaleTriesAndGoesBackWhereItDoesNotHelp(t *testing.T) {
	h := newHarness(t)
	f := &figures{recent: proxy.Traffic{Rate: 100, InFlight: 32, P95: 200 * time.Millisecond}}
	h.sup = supervisor.New(supervisor.Config{Runtime: h.rt, Store: h.st, Clock: h.clk, Traffic: f})
	h.start()
	h.up(project(service("web", autoscaled)))
	h.tick(t, 30*time.Second, "scaled out for latency", func() bool { return h.running("web") == 4 })
	e := h.waitEntry(match{service: "web", action: "scale", reason: "latency"}, 1)
	if !strings.HasPrefix(e.Message, "1 -> 4: p95 200ms") {
		t.Errorf("scale message %q", e.Message)
	}
	h.tick(t, 30*time.Second, "back to 1 with no-effect", func() bool {
		return len(h.entries(match{service: "web", action: "scale", reason: "no-effect"})) == 1 && h.running("web") == 1
	})
	st, err := h.sup.ScaleStatus(context.Background(), "demo")
	if err != nil || len(st) != 1 || st[0].Desired != 1 || st[0].NoEffect == "" || !st[0].Auto {
		t.Fatalf("%v %+v", err, st)
	}

	h.stop()
	h.sup = supervisor.New(supervisor.Config{Runtime: h.rt, Store: h.st, Clock: h.clk, Traffic: f})
	h.start()
	st, err = h.sup.ScaleStatus(context.Background(), "demo")
	if err != nil || st[0].NoEffect == "" {
		t.Fatalf("the verdict did not survive a restart: %v %+v", err, st)
	}
	for range 20 { // the same picture: no second try
		h.clk.Advance(500 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(h.entries(match{service: "web", action: "scale", reason: "latency"})); n != 1 || h.running("web") != 1 {
		t.Fatalf("tried again (%d scale-outs, %d running) under the same picture:\n%s", n, h.running("web"), h.journal())
	}
}

// TestAutoscaleOnCPU: a service with no published port and a cpu target is
// scaled on the engine's CPU figures: out when its replica works 1.5 cores
// against a target of 0.5, back to min once they idle.
func TestAutoscaleOnCPU(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.up(project(service("worker", func(s *spec.Service) {
		s.Tend.Autoscale = &spec.Autoscale{Min: 1, Max: 4, CPU: 0.5, Interval: time.Second,
			UpStabilization: 2 * time.Second, DownStabilization: 15 * time.Second, MaxStep: 4, Cooldown: 3 * time.Second}
	})))
	cores := func(n float64) {
		cs, _ := h.rt.List(context.Background(), "demo")
		for _, c := range cs {
			if c.State == runtime.Running {
				h.rt.SetCores(c.ID, n)
			}
		}
	}
	h.tick(t, time.Minute, "running", func() bool { return h.running("worker") == 1 })
	cores(1.5)
	h.tick(t, time.Minute, "scaled out for cpu", func() bool { return h.running("worker") == 3 })
	e := h.waitEntry(match{service: "worker", action: "scale", reason: "cpu"}, 1)
	if !strings.HasPrefix(e.Message, "1 -> 3: cpu 1.50 cores per replica, target 0.50") {
		t.Errorf("scale message %q", e.Message)
	}
	cores(0.05)
	h.tick(t, time.Minute, "back to min", func() bool { return h.running("worker") == 1 })
	if n := len(h.entries(match{service: "worker", action: "scale", reason: "cpu"})); n != 2 {
		t.Errorf("%d cpu scale entries, want out and in:\n%s", n, h.journal())
	}
}

// TestQuarantinedServiceIsNotScaled: an autoscaled service at 3 replicas
// with no traffic would go back to min, but its replicas cannot stay up and
// it is quarantined: from then on the autoscaler holds it at its count, and
// `tend ps` says why.
func TestQuarantinedServiceIsNotScaled(t *testing.T) {
	h := newHarness(t)
	f := &figures{recent: proxy.Traffic{}} // no traffic: idle
	h.sup = supervisor.New(supervisor.Config{Runtime: h.rt, Store: h.st, Clock: h.clk, Traffic: f})
	must(t, h.st.PutCount("demo", "web", store.Count{Scale: scale.State{Replicas: 3}, Updated: h.clk.Now()}))
	h.start()
	h.up(project(service("web", autoscaled, func(s *spec.Service) {
		s.Restart.MaxAttempts = 1
		s.Tend.Quarantine = spec.Quarantine{Retry: time.Hour, Probation: 10 * time.Second}
	})))
	h.waitEntry(match{"create", "new", "web", 3, false}, 1)
	quarantined := match{"quarantine", "repairs-failed", "web", 0, false}
	eventually(t, "the quarantine", func() bool {
		if len(h.entries(quarantined)) > 0 {
			return true
		}
		for slot := 1; slot <= 3; slot++ {
			if c, ok := h.rt.Container(h.container("web", slot)); ok && c.State == runtime.Running {
				must(t, h.rt.Exit(c.ID, 1))
			}
		}
		h.clk.Advance(200 * time.Millisecond)
		h.sup.Poke()
		return false
	})
	for range 60 { // idle for a minute: past down stabilization and cooldown
		h.clk.Advance(time.Second)
		h.sup.Poke()
		time.Sleep(5 * time.Millisecond)
	}
	if n := h.entries(match{service: "web", action: "scale"}); len(n) > 0 {
		t.Fatalf("a quarantined service was scaled:\n%s", h.journal())
	}
	st, err := h.sup.ScaleStatus(context.Background(), "demo")
	if err != nil || len(st) != 1 || st[0].Desired != 3 || !strings.HasPrefix(st[0].Held, "quarantined") {
		t.Fatalf("scale status %v %+v, want desired 3, held: quarantined", err, st)
	}
}
