package probe

import (
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// Status is a probe's verdict on a replica.
type Status string

const (
	Unknown Status = "unknown" // no threshold reached yet in this run
	Passing Status = "passing"
	Failing Status = "failing"
)

// State is what the checks of one probe on one run of a container add up to.
// It is plain data: Observe folds a result into it and reads no clock.
type State struct {
	Status   Status `json:"status"`
	Passes   int    `json:"passes"`   // checks passed in a row
	Failures int    `json:"failures"` // checks failed in a row, not counting those in the start grace
	Last     Result `json:"last"`     // the latest check
	// Since is when Status last changed; zero while it is still the
	// initial Unknown.
	Since time.Time `json:"since"`
}

// Observe returns the state after result r of probe p, for a run that
// started at startedAt; r.At is the time of the observation.
//
// p.FailureThreshold failures in a row make the state Failing and
// p.SuccessThreshold passes in a row make it Passing; short of that it keeps
// its status, so a new run stays Unknown until a threshold is reached (with
// SuccessThreshold 1 its first pass makes it Passing at once). A failure
// within p.StartGrace of startedAt does not count toward Failing, but it
// does break a streak of passes.
func (s State) Observe(p *spec.Probe, startedAt time.Time, r Result) State {
	if s.Status == "" {
		s.Status = Unknown
	}
	s.Last = r
	if r.OK {
		s.Passes++
		s.Failures = 0
		if s.Passes >= atLeastOne(p.SuccessThreshold, spec.DefaultProbeSuccessThreshold) {
			s = s.become(Passing, r.At)
		}
		return s
	}
	s.Passes = 0
	if r.At.Before(startedAt.Add(p.StartGrace)) {
		return s
	}
	s.Failures++
	if s.Failures >= atLeastOne(p.FailureThreshold, spec.DefaultProbeFailureThreshold) {
		s = s.become(Failing, r.At)
	}
	return s
}

func (s State) become(st Status, at time.Time) State {
	if s.Status != st {
		s.Status, s.Since = st, at
	}
	return s
}

// atLeastOne is n, or def when n is not set (a probe that skipped validation).
func atLeastOne(n, def int) int {
	if n < 1 {
		return def
	}
	return n
}
