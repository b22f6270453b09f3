package supervisor_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
)

// Issue 20: the engine restarts. Its event stream breaks, it stops every
// container on its way down (a program that exits 0 on SIGTERM looks like a
// job that completed), lists fail until it is back. tend counts those exits
// as the engine's own stops: restarted at once, not crashes.
func TestEngineRestartIsNoCrash(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.up(project(service("worker", restart(spec.RestartOnFailure))))
	h.waitEntry(match{"create", "new", "worker", 1, false}, 1)
	id := h.waitSeen("worker", 1)

	down := errors.New("engine: connection refused")
	h.rt.FailNext(fake.MethodList, down)
	h.rt.FailNext(fake.MethodList, down)
	h.rt.BreakEvents(down)
	if err := h.rt.Exit(id, 0); err != nil { // SIGTERM from the engine, handled: exit 0
		t.Fatal(err)
	}
	// The stream reconnects after 100 ms, each failed pass retries after 1 s.
	var e []string
	eventually(t, "the worker restarted as stopped by the engine", func() bool {
		h.clk.Advance(100 * time.Millisecond)
		es := h.entries(match{"restart", "engine-down", "worker", 1, false})
		if len(es) > 0 {
			e = append(e, es[0].Message)
		}
		return len(es) > 0
	})
	if !strings.Contains(e[0], "stopped by the engine, not a crash") {
		t.Errorf("entry %q, want it to say the engine stopped it", e[0])
	}
	if es := h.entries(match{"completed", "completed", "worker", 1, false}); len(es) != 0 {
		t.Errorf("the engine's stop was taken for a completed job: %v", es)
	}
	eventually(t, "the worker running again", func() bool {
		c, ok := h.rt.Container(id)
		return ok && c.State == runtime.Running
	})
	if r := h.replica("worker", 1); r.Failed {
		t.Errorf("worker after the engine's restart: %+v", r)
	}
}
