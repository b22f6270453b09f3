package quarantine

import (
	"fmt"
	"slices"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// Phase is where a service stands.
type Phase string

const (
	Closed      Phase = ""            // supervised as usual (the zero State)
	Quarantined Phase = "quarantined" // isolated until NextTrial
	Trial       Phase = "trial"       // one slot repaired half-open; the rest held
)

// State is what tend remembers of one service's quarantine, across passes
// and restarts of tend. The zero State is a service supervised as usual.
type State struct {
	Phase Phase     `json:"phase,omitempty"`
	Since time.Time `json:"since,omitzero"` // when the phase began
	Began time.Time `json:"began,omitzero"` // when the quarantine began (trials and retries included)
	// Cause is why the service was quarantined, for people.
	Cause string `json:"cause,omitempty"`
	// Retry is the wait before NextTrial; it doubles after a failed trial.
	Retry     time.Duration `json:"retry,omitempty"`
	NextTrial time.Time     `json:"next_trial,omitzero"`
	// TrialSlot is the slot repaired during a trial.
	TrialSlot int `json:"trial_slot,omitempty"`
	// Trials counts the trials that failed since the quarantine began.
	Trials int `json:"trials,omitempty"`
	// ReadySince is, during a trial, since when the trial slot has been
	// seen ready at every look; zero when it was not at the last.
	ReadySince time.Time `json:"ready_since,omitzero"`
	// Hash is the service's spec hash when it was quarantined: a new spec
	// (`tend up` with a fixed command) lifts the quarantine.
	Hash string `json:"hash,omitempty"`
}

// Held reports whether the service is isolated: quarantined, or on trial.
func (s State) Held() bool { return s.Phase != Closed }

// Slot is what the supervisor sees of one desired slot.
type Slot struct {
	Slot int
	// Repairs are the times of its restarts and replacements that count
	// (the reconciler's crash streak), and of its last failed action.
	Repairs []time.Time
	Ready   bool // running the current spec and ready
	// Down: it has no running container of the current spec, or a sick one.
	Down bool
	// DownAt is when it went down, as far as is known: its container's
	// exit, or its last failed action; zero when unknown.
	DownAt time.Time
}

// Observed is one service as the supervisor sees it.
type Observed struct {
	Hash  string // the desired spec's hash
	Slots []Slot // by slot number
	// LastReady is when a replica of the service was last seen ready:
	// repairs before it do not count (a replica stayed ready meanwhile).
	LastReady time.Time
}

// Change is what a step did, in the journal's words.
type Change string

const (
	None       Change = ""
	Quarantine Change = "quarantine"
	StartTrial Change = "trial"
	Restore    Change = "restore"
)

// Reason is why, in a word a person can grep for.
type Reason string

const (
	ReasonRepairsFailed Reason = "repairs-failed"   // the budget of repairs was spent with no replica ready
	ReasonTrialFailed   Reason = "trial-failed"     // the trial replica failed, or was not ready in time
	ReasonRetry         Reason = "retry"            // the quarantine's wait is over: a half-open trial
	ReasonProbation     Reason = "probation-passed" // the trial replica stayed ready for probation
	ReasonSpecChanged   Reason = "spec-changed"     // `tend up` brought a new spec
	ReasonHeal          Reason = "heal"             // `tend heal` lifted it by hand
)

// Decision is Step's answer.
type Decision struct {
	State   State // the next state; persist it when Change is not None
	Change  Change
	Reason  Reason
	Message string    // what a person reads in the journal
	Wake    time.Time // when to step again even if nothing happens; zero: no need
}

// Step moves one service's quarantine on at now.
func Step(b spec.Quarantine, st State, ob Observed, now time.Time) Decision {
	switch st.Phase {
	case Quarantined:
		return held(b, st, ob, now)
	case Trial:
		return trial(b, st, ob, now)
	}
	return closed(b, st, ob, now)
}

// Heal is a quarantine lifted by hand; the zero Decision when st is not held.
func Heal(st State, now time.Time) Decision {
	if !st.Held() {
		return Decision{State: st}
	}
	return restore(st, now, ReasonHeal, "lifted by hand (`tend heal`)")
}

// closed quarantines the service once its budget of repairs is spent
// within the window while one of its slots is down and none is ready.
func closed(b spec.Quarantine, st State, ob Observed, now time.Time) Decision {
	from := now.Add(-b.Within)
	if st.Since.After(from) {
		from = st.Since // repairs before a restore are forgiven
	}

	n, down, ready := 0, false, false
	var oldest time.Time
	for _, s := range ob.Slots {
		for _, t := range s.Repairs {
			// Repairs before a replica was last seen ready do not count.
			if t.After(from) && !t.After(now) && !t.Before(ob.LastReady) {
				n++
				if oldest.IsZero() || t.Before(oldest) {
					oldest = t
				}
			}
		}
		down = down || s.Down
		ready = ready || s.Ready
	}
	if n < b.After || !down || ready {
		d := Decision{State: st}
		if n > 0 && n < b.After {
			d.Wake = oldest.Add(b.Within) // when the oldest repair stops counting
		}
		return d
	}
	next := State{Phase: Quarantined, Since: now, Began: now, Retry: b.Retry, NextTrial: now.Add(b.Retry), Hash: ob.Hash,
		Cause: fmt.Sprintf("%s within %s failed and no replica is ready", repairs(n), b.Within)}
	return Decision{State: next, Change: Quarantine, Reason: ReasonRepairsFailed, Wake: next.NextTrial,
		Message: fmt.Sprintf("%s; no more repairs, callers get the fallback; first trial in %s", next.Cause, b.Retry)}
}

// held waits for the next trial.
func held(b spec.Quarantine, st State, ob Observed, now time.Time) Decision {
	if ob.Hash != st.Hash {
		return restore(st, now, ReasonSpecChanged, "the service's spec changed")
	}
	if now.Before(st.NextTrial) {
		return Decision{State: st, Wake: st.NextTrial}
	}
	slot := 1
	if len(ob.Slots) > 0 {
		slot = slices.MinFunc(ob.Slots, func(a, b Slot) int { return a.Slot - b.Slot }).Slot
	}
	next := st
	next.Phase, next.Since, next.TrialSlot, next.ReadySince = Trial, now, slot, time.Time{}
	return Decision{State: next, Change: StartTrial, Reason: ReasonRetry, Wake: now.Add(b.Within),
		Message: fmt.Sprintf("half-open trial %d on slot %d: restored once it stays ready for %s", st.Trials+1, slot, b.Probation)}
}

// trial restores the service once the trial slot has stayed ready for
// the probation, and quarantines it again if it fails or is not ready
// within the window.
func trial(b spec.Quarantine, st State, ob Observed, now time.Time) Decision {
	if ob.Hash != st.Hash {
		return restore(st, now, ReasonSpecChanged, "the service's spec changed")
	}
	var s Slot
	for _, x := range ob.Slots {
		if x.Slot == st.TrialSlot {
			s = x
		}
	}
	next := st
	if s.Ready {
		if next.ReadySince.IsZero() {
			next.ReadySince = now
		}
		if ready := now.Sub(next.ReadySince); ready >= b.Probation {
			return restore(next, now, ReasonProbation, fmt.Sprintf("slot %d stayed ready for %s", s.Slot, ready.Round(time.Millisecond)))
		}
		return Decision{State: next, Wake: next.ReadySince.Add(b.Probation)}
	}
	next.ReadySince = time.Time{}
	failed := s.Down && s.DownAt.After(st.Since)
	late := now.Sub(st.Since) >= b.Within
	if !failed && !late {
		return Decision{State: next, Wake: st.Since.Add(b.Within)}
	}
	why := fmt.Sprintf("the trial replica (slot %d) failed", st.TrialSlot)
	if !failed {
		why = fmt.Sprintf("the trial replica (slot %d) was not ready within %s", st.TrialSlot, b.Within)
	}
	next.Phase, next.Since, next.TrialSlot = Quarantined, now, 0
	next.Trials++
	next.Retry = min(2*max(st.Retry, b.Retry), b.RetryMax)
	next.NextTrial = now.Add(next.Retry)
	return Decision{State: next, Change: Quarantine, Reason: ReasonTrialFailed, Wake: next.NextTrial,
		Message: fmt.Sprintf("%s; next trial in %s", why, next.Retry)}
}

// restore ends a quarantine; since marks when, so repairs before it do not count.
func restore(st State, now time.Time, r Reason, why string) Decision {
	msg := fmt.Sprintf("%s; back in rotation and repaired as usual after %s isolated", why, now.Sub(st.Began).Round(time.Second))
	return Decision{State: State{Since: now}, Change: Restore, Reason: r, Message: msg}
}

func repairs(n int) string {
	if n == 1 {
		return "1 repair"
	}
	return fmt.Sprintf("%d repairs", n)
}
