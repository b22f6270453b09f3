package quarantine

import (
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// budget is the defaults: 5 repairs within 2m, trial after 30s doubling to 10m, 30s probation.
var budget = (&spec.Service{}).Budget()

func times(secs ...float64) []time.Time {
	var out []time.Time
	for _, s := range secs {
		out = append(out, at(s))
	}
	return out
}

func TestStepClosed(t *testing.T) {
	cases := []struct {
		name   string
		st     State
		slots  []Slot
		now    float64
		change Change
		wake   time.Time
	}{
		{"no repairs", State{}, []Slot{{Slot: 1, Ready: true}}, 10, None, time.Time{}},
		{"four repairs: not yet, wakes when the oldest stops counting", State{},
			[]Slot{{Slot: 1, Repairs: times(1, 2, 3, 4), Down: true}}, 5, None, at(121)},
		{"five repairs, down, none ready", State{},
			[]Slot{{Slot: 1, Repairs: times(1, 2, 3, 4, 5), Down: true}}, 6, Quarantine, at(36)},
		{"five repairs over two slots", State{},
			[]Slot{{Slot: 1, Repairs: times(1, 3, 5), Down: true}, {Slot: 2, Repairs: times(2, 4), Down: true}}, 6, Quarantine, at(36)},
		{"five repairs, but a replica is ready", State{},
			[]Slot{{Slot: 1, Repairs: times(1, 2, 3, 4, 5), Down: true}, {Slot: 2, Ready: true}}, 6, None, time.Time{}},
		{"five repairs, the last still running (not failed yet)", State{},
			[]Slot{{Slot: 1, Repairs: times(1, 2, 3, 4, 5)}}, 6, None, time.Time{}},
		{"repairs older than the window do not count", State{},
			[]Slot{{Slot: 1, Repairs: times(1, 2, 3, 130, 131), Down: true}}, 132, None, at(250)},
		{"repairs before a replica was last ready do not count", State{},
			[]Slot{{Slot: 1, Repairs: times(1, 2, 3, 4, 5), Down: true}, {Slot: 2, Down: true}}, 6, None, at(125)},
		{"repairs before a restore do not count", State{Since: at(3.5)},
			[]Slot{{Slot: 1, Repairs: times(1, 2, 3, 4, 5), Down: true}}, 6, None, at(124)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ob := Observed{Hash: "h1", Slots: c.slots}
			if strings.Contains(c.name, "last ready") {
				ob.LastReady = at(4.5)
			}
			d := Step(budget, c.st, ob, at(c.now))
			if d.Change != c.change {
				t.Fatalf("change = %q, want %q (%s)", d.Change, c.change, d.Message)
			}
			if !d.Wake.Equal(c.wake) {
				t.Errorf("wake = %v, want %v", d.Wake, c.wake)
			}
			if c.change == Quarantine {
				if d.State.Phase != Quarantined || d.State.Hash != "h1" || !d.State.NextTrial.Equal(at(c.now+30)) {
					t.Errorf("state = %+v", d.State)
				}
				if d.Reason != ReasonRepairsFailed || !strings.Contains(d.Message, "5 repairs within 2m0s") {
					t.Errorf("reason %q, message %q", d.Reason, d.Message)
				}
			}
		})
	}
}

func TestComposeBudgetCounts(t *testing.T) {
	svc := spec.Service{Restart: spec.RestartPolicy{MaxAttempts: 2, Window: 10 * time.Second}}
	b := svc.Budget()
	if b.After != 2 || b.Within != 10*time.Second {
		t.Fatalf("budget = %+v, want after 2 within 10s", b)
	}
	d := Step(b, State{}, Observed{Slots: []Slot{{Slot: 1, Repairs: times(1, 2), Down: true}}}, at(3))
	if d.Change != Quarantine {
		t.Fatalf("change = %q, want quarantine", d.Change)
	}
}

// TestStory walks one service through a quarantine, a failed trial, a
// successful one, and a second quarantine lifted by a new spec and by hand.
func TestStory(t *testing.T) {
	ob := func(s Slot) Observed {
		s.Slot = 1
		return Observed{Hash: "h1", Slots: []Slot{s, {Slot: 2, Down: true}}}
	}
	step := func(st State, s Slot, now float64, want Change) State {
		t.Helper()
		d := Step(budget, st, ob(s), at(now))
		if d.Change != want {
			t.Fatalf("at %vs: change = %q, want %q (%s; state %+v)", now, d.Change, want, d.Message, d.State)
		}
		return d.State
	}
	down := Slot{Repairs: times(1, 2, 3, 4, 5), Down: true, DownAt: at(5.5)}
	st := step(State{}, down, 6, Quarantine)
	st = step(st, down, 35, None) // waiting for the trial at 36
	if d := Step(budget, st, ob(down), at(35)); !d.Wake.Equal(at(36)) {
		t.Fatalf("wake = %v, want the trial at 36s", d.Wake)
	}
	st = step(st, down, 36, StartTrial)
	if st.TrialSlot != 1 {
		t.Fatalf("trial slot = %d, want 1 (the lowest)", st.TrialSlot)
	}
	st = step(st, down, 36.1, None)                                   // still down from before the trial
	st = step(st, Slot{Repairs: times(36.2)}, 36.3, None)             // restarted, not ready yet
	st = step(st, Slot{Down: true, DownAt: at(37)}, 37.1, Quarantine) // the trial replica failed
	if st.Retry != time.Minute || !st.NextTrial.Equal(at(97.1)) || st.Trials != 1 {
		t.Fatalf("after a failed trial: %+v, want retry 1m at 97.1s", st)
	}
	st = step(st, down, 97.1, StartTrial)
	st = step(st, Slot{Ready: true}, 98, None)
	st = step(st, Slot{}, 99, None) // readiness lost: probation starts again
	st = step(st, Slot{Ready: true}, 100, None)
	if d := Step(budget, st, ob(Slot{Ready: true}), at(110)); !d.Wake.Equal(at(130)) {
		t.Fatalf("wake = %v, want the end of probation at 130s", d.Wake)
	}
	st = step(st, Slot{Ready: true}, 130, Restore)
	if st.Held() || !st.Since.Equal(at(130)) {
		t.Fatalf("restored state = %+v", st)
	}
	// The old repairs are forgiven; new ones count again.
	st = step(st, Slot{Repairs: times(1, 2, 3, 131, 132), Down: true}, 133, None)
	st = step(st, Slot{Repairs: times(131, 132, 133, 134, 135), Down: true}, 136, Quarantine)
	d := Step(budget, st, Observed{Hash: "h2", Slots: []Slot{{Slot: 1, Down: true}}}, at(137))
	if d.Change != Restore || d.Reason != ReasonSpecChanged {
		t.Fatalf("new spec: %q %q, want restore spec-changed", d.Change, d.Reason)
	}
	if d := Heal(st, at(140)); d.Change != Restore || d.Reason != ReasonHeal || d.State.Held() {
		t.Fatalf("heal: %+v", d)
	}
	if d := Heal(State{}, at(140)); d.Change != None {
		t.Fatalf("heal of a closed service: %q, want none", d.Change)
	}
}

func TestTrialNotReadyInTime(t *testing.T) {
	st := State{Phase: Trial, Since: at(0), TrialSlot: 1, Retry: 8 * time.Minute, Hash: "h"}
	ob := Observed{Hash: "h", Slots: []Slot{{Slot: 1}}}
	if d := Step(budget, st, ob, at(119)); d.Change != None || !d.Wake.Equal(at(120)) {
		t.Fatalf("before the window: %q wake %v", d.Change, d.Wake)
	}
	d := Step(budget, st, ob, at(120))
	if d.Change != Quarantine || d.Reason != ReasonTrialFailed || d.State.Retry != 10*time.Minute {
		t.Fatalf("late trial: %q %q retry %s, want quarantine trial-failed, retry capped at 10m", d.Change, d.Reason, d.State.Retry)
	}
	if !strings.Contains(d.Message, "not ready within 2m0s") {
		t.Errorf("message %q", d.Message)
	}
}
