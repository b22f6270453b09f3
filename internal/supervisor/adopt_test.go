package supervisor_test

import (
	"context"
	"testing"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/store"
)

func TestAdoption(t *testing.T) {
	p := project(service("web", replicas(2)))
	web, _ := p.Service("web")
	tests := []struct {
		name string
		// setup leaves the store and the runtime as a tend that stopped would.
		setup       func(t *testing.T, h *harness)
		message     string
		wantActions []match
	}{
		{name: "after a restart of tend", setup: func(t *testing.T, h *harness) {
			h.up(p) // before the start, so that this first tend journals its adoption of nothing
			h.start()
			h.waitEntry(match{"create", "new", "web", 2, false}, 1)
			h.waitEntry(match{"create", "new", "web", 1, false}, 1)
			h.stop()
		}, message: "found 2 containers (2 running) of desired state version 1"},
		{name: "containers made before tend looked", setup: func(t *testing.T, h *harness) {
			if _, err := h.st.PutProject(p, t0); err != nil {
				t.Fatal(err)
			}
			h.rt.AddNetwork("demo_default")
			for slot := 1; slot <= 2; slot++ {
				h.rt.Add(runtime.Container{Project: "demo", Service: "web", Slot: slot, Hash: web.Hash(),
					State: runtime.Running, Created: t0, StartedAt: t0})
			}
		}, message: "found 2 containers (2 running) of desired state version 1"},
		{name: "one created but never started", setup: func(t *testing.T, h *harness) {
			if _, err := h.st.PutProject(p, t0); err != nil {
				t.Fatal(err)
			}
			h.rt.AddNetwork("demo_default")
			h.rt.Add(runtime.Container{Project: "demo", Service: "web", Slot: 1, Hash: web.Hash(),
				State: runtime.Running, Created: t0, StartedAt: t0})
			h.rt.Add(runtime.Container{Project: "demo", Service: "web", Slot: 2, Hash: web.Hash(),
				State: runtime.Created, Created: t0})
		}, message: "found 2 containers (1 running) of desired state version 1",
			wantActions: []match{{"start", "not-started", "web", 2, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tt.setup(t, h)
			ids := map[int]string{1: h.container("web", 1), 2: h.container("web", 2)}
			h.rt.ResetCalls()
			before, _ := h.st.Journal(store.Query{})
			adoptMatch := match{action: "adopt", reason: "tend-started"}
			adoptions := len(h.entries(adoptMatch))

			h.sup = h.newSupervisor()
			h.start()
			adopt := h.waitEntry(adoptMatch, adoptions+1)
			if adopt.Message != tt.message {
				t.Errorf("adopt message %q, want %q", adopt.Message, tt.message)
			}
			if adopt.Seq != uint64(len(before)+1) {
				t.Errorf("adopt entry numbered %d after %d entries: the journal must continue", adopt.Seq, len(before))
			}
			for _, m := range tt.wantActions {
				h.waitEntry(m, 1)
			}
			// Once the slots remember their containers, a pass has planned.
			eventually(t, "the slots to remember their containers", func() bool {
				hist, _ := h.st.History("demo")
				return hist[reconcile.SlotKey{Service: "web", Slot: 1}].Container == ids[1] &&
					hist[reconcile.SlotKey{Service: "web", Slot: 2}].Container == ids[2]
			})
			h.stop() // waits for the actions under way

			if got := h.calls(fake.MethodCreate, fake.MethodStop, fake.MethodRemove); len(got) != 0 {
				t.Errorf("calls %q on adoption, want none", got)
			}
			wantStarts := len(tt.wantActions)
			if got := h.calls(fake.MethodStart); len(got) != wantStarts {
				t.Errorf("starts %q, want %d", got, wantStarts)
			}
			after, _ := h.st.Journal(store.Query{After: adopt.Seq})
			if len(after) != len(tt.wantActions) {
				t.Errorf("journal after adoption:\n%s\nwant %d entries", h.journal(), len(tt.wantActions))
			}
		})
	}
}

func TestRunStopsWithoutStoppingTheStack(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.up(twoServices())
	for _, s := range []string{"api", "web"} {
		h.waitEntry(match{"create", "new", s, 1, false}, 1)
	}
	h.waitEntry(match{"create", "new", "web", 2, false}, 1)
	h.stop() // Run must return nil, and the cleanup checks for leaked goroutines

	cs, _ := h.rt.List(context.Background(), "demo")
	if len(cs) != 3 {
		t.Errorf("%d containers after stopping tend, want 3", len(cs))
	}
	for _, c := range cs {
		if c.State != runtime.Running {
			t.Errorf("%s is %s after stopping tend, want running", c.Name, c.State)
		}
	}
	if got := h.calls(fake.MethodStop, fake.MethodRemove, fake.MethodRemoveNetwork); len(got) != 0 {
		t.Errorf("stopping tend made calls %q", got)
	}
}
