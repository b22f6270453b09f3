package probe

import (
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestObserve(t *testing.T) {
	// Each case checks once a second from the run's start at t0: checks is
	// the outcomes in order ('P' passed, 'F' failed), want the status after
	// each ('U', 'P', 'F').
	tests := []struct {
		name             string
		fails, passes    int           // thresholds
		grace            time.Duration // start grace
		checks, want     string
		since            time.Duration // when the last status was entered, from t0; -1: never
		streakP, streakF int
	}{
		{name: "first pass is passing at once with success threshold 1", fails: 3, passes: 1, checks: "P", want: "P", since: 0, streakP: 1},
		{name: "unknown until success threshold", fails: 3, passes: 3, checks: "PPP", want: "UUP", since: 2 * time.Second, streakP: 3},
		{name: "unknown until failure threshold", fails: 3, passes: 1, checks: "FFF", want: "UUF", since: 2 * time.Second, streakF: 3},
		{name: "failure threshold 1 fails at once", fails: 1, passes: 1, checks: "F", want: "F", since: 0, streakF: 1},
		{name: "passing turns failing after threshold", fails: 3, passes: 1, checks: "PFFF", want: "PPPF", since: 3 * time.Second, streakF: 3},
		{name: "a pass ends the failure streak", fails: 3, passes: 1, checks: "PFFPFF", want: "PPPPPP", since: 0, streakF: 2},
		{name: "failing recovers after success threshold", fails: 2, passes: 2, checks: "FFPP", want: "UFFP", since: 3 * time.Second, streakP: 2},
		{name: "a failure ends the pass streak", fails: 3, passes: 2, checks: "PFPP", want: "UUUP", since: 3 * time.Second, streakP: 2},
		{name: "failing stays failing past the threshold", fails: 2, passes: 1, checks: "FFFF", want: "UFFF", since: time.Second, streakF: 4},
		{name: "failures in the start grace do not count", fails: 3, passes: 1, grace: 2500 * time.Millisecond, checks: "FFFFFF", want: "UUUUUF", since: 5 * time.Second, streakF: 3},
		{name: "grace ends at startedAt plus grace exactly", fails: 1, passes: 1, grace: 2 * time.Second, checks: "FFF", want: "UUF", since: 2 * time.Second, streakF: 1},
		{name: "a failure in the grace still ends the pass streak", fails: 1, passes: 2, grace: time.Minute, checks: "PFPP", want: "UUUP", since: 3 * time.Second, streakP: 2},
		{name: "a failure in the grace leaves passing alone", fails: 1, passes: 1, grace: time.Minute, checks: "PFF", want: "PPP", since: 0},
		{name: "no checks is unknown", fails: 3, passes: 1, checks: "", want: "", since: -1},
	}
	letter := map[Status]byte{Unknown: 'U', Passing: 'P', Failing: 'F'}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &spec.Probe{FailureThreshold: tt.fails, SuccessThreshold: tt.passes, StartGrace: tt.grace}
			s := State{Status: Unknown}
			var got []byte
			for i, c := range []byte(tt.checks) {
				s = s.Observe(p, t0, Result{OK: c == 'P', Output: string(c), At: t0.Add(time.Duration(i) * time.Second)})
				got = append(got, letter[s.Status])
			}
			if string(got) != tt.want {
				t.Errorf("statuses = %s, want %s", got, tt.want)
			}
			wantSince := time.Time{}
			if tt.since >= 0 {
				wantSince = t0.Add(tt.since)
			}
			if !s.Since.Equal(wantSince) {
				t.Errorf("Since = %v, want %v", s.Since, wantSince)
			}
			if s.Passes != tt.streakP || s.Failures != tt.streakF {
				t.Errorf("streaks: %d passes, %d failures; want %d, %d", s.Passes, s.Failures, tt.streakP, tt.streakF)
			}
			if n := len(tt.checks); n > 0 && s.Last.Output != tt.checks[n-1:] {
				t.Errorf("Last = %+v, want the last check", s.Last)
			}
		})
	}
}

func TestObserveZeroState(t *testing.T) {
	p := &spec.Probe{FailureThreshold: 3, SuccessThreshold: 1}
	if s := (State{}).Observe(p, t0, Result{At: t0}); s.Status != Unknown {
		t.Errorf("zero state after one failure: %q, want %q", s.Status, Unknown)
	}
}

// A probe that skipped validation (thresholds 0) gets the defaults, not a
// verdict from no checks at all.
func TestObserveUnsetThresholds(t *testing.T) {
	p := &spec.Probe{}
	s := State{}
	for i := range spec.DefaultProbeFailureThreshold {
		if s.Status == Failing {
			t.Fatalf("failing after %d failures", i)
		}
		s = s.Observe(p, t0, Result{At: t0.Add(time.Duration(i) * time.Second)})
	}
	if s.Status != Failing {
		t.Errorf("status %q after %d failures, want failing", s.Status, spec.DefaultProbeFailureThreshold)
	}
}
