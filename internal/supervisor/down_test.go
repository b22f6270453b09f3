package supervisor_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime/fake"
)

func TestDown(t *testing.T) {
	tests := []struct {
		name        string
		volumes     bool
		wantVolumes []string
		message     string
	}{
		{name: "keeps volumes", volumes: false, wantVolumes: []string{"demo_data"},
			message: "removed 3 containers and 1 networks; kept 1 volumes"},
		{name: "removes volumes when asked", volumes: true, wantVolumes: []string{},
			message: "removed 3 containers and 1 networks and 1 volumes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.start()
			h.up(twoServices())
			h.waitEntry(match{"create", "new", "web", 2, false}, 1)
			h.waitEntry(match{"create", "new", "api", 1, false}, 1)
			api := h.container("api", 1)

			if err := h.down("demo", tt.volumes); err != nil {
				t.Fatalf("down: %v", err)
			}
			if cs, _ := h.rt.List(context.Background(), "demo"); len(cs) != 0 {
				t.Errorf("containers left: %+v", cs)
			}
			if n := h.rt.Networks(); len(n) != 0 {
				t.Errorf("networks left: %q", n)
			}
			if v := h.rt.Volumes(); !slices.Equal(v, tt.wantVolumes) {
				t.Errorf("volumes %q, want %q", v, tt.wantVolumes)
			}
			if _, err := h.st.Project("demo"); errs.KindOf(err) != errs.NotFound {
				t.Errorf("project after down: err = %v, want not-found", err)
			}
			if hist, _ := h.st.History("demo"); len(hist) != 0 {
				t.Errorf("slot memory after down: %+v", hist)
			}
			e := h.waitEntry(match{action: "down", reason: "requested"}, 1)
			if e.Message != tt.message {
				t.Errorf("down message %q, want %q", e.Message, tt.message)
			}
			if !slices.Contains(h.calls(fake.MethodStop), "Stop("+api+", 3s)") {
				t.Errorf("stops %q: want api stopped with its stop_grace_period of 3s", h.calls(fake.MethodStop))
			}
			if reps, err := h.sup.Status(context.Background(), ""); err != nil || len(reps) != 0 {
				t.Errorf("status after down: %+v, %v", reps, err)
			}
		})
	}
}

func TestDownUnknownProject(t *testing.T) {
	h := newHarness(t)
	h.start()
	if err := h.sup.Down(context.Background(), "nope", false); errs.KindOf(err) != errs.NotFound {
		t.Errorf("down of an unknown project: err = %v, want not-found", err)
	}
}

// A down whose caller gives up leaves the intent stored: up is refused until a
// supervisor (here one started later, as after a restart of tend) finishes it.
func TestUpWhileDeleting(t *testing.T) {
	h := newHarness(t)
	h.up(twoServices()) // the loop is not running yet: nothing is created
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.sup.Down(ctx, "demo", false); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("down that timed out: err = %v, want unavailable", err)
	}
	if rec, err := h.st.Project("demo"); err != nil || !rec.Deleting {
		t.Fatalf("after the timed-out down: %+v, %v; want it marked deleting", rec, err)
	}
	_, err := h.sup.Up(context.Background(), twoServices())
	if errs.KindOf(err) != errs.Conflict {
		t.Fatalf("up while deleting: err = %v, want conflict", err)
	}

	h.start()
	h.waitEntry(match{action: "down", reason: "requested"}, 1)
	eventually(t, "the project to be forgotten", func() bool {
		_, err := h.st.Project("demo")
		return errs.KindOf(err) == errs.NotFound
	})
	if n := len(h.calls(fake.MethodCreate)); n != 0 {
		t.Errorf("%d creates for a project being taken down", n)
	}
	h.up(twoServices())
	h.waitEntry(match{"create", "new", "web", 1, false}, 1)
}
