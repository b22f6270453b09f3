package supervisor

import (
	"slices"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
)

// keepEngineDown is how long an outage of the engine is remembered: its
// containers' exits are seen within a pass or two of its return.
const keepEngineDown = 10 * time.Minute

// engineWatch tracks the engine's outages: from its event stream breaking
// (or a list failing) to the first list that succeeds after a list failed.
// A stream that broke and came back without a failed list was no outage.
type engineWatch struct {
	lost        time.Time // the stream broke, or a list failed; zero while fine
	unreachable bool      // a list failed since
	spans       []reconcile.Span
}

// engineLost notes that the event stream broke at now.
func (s *Supervisor) engineLost(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.engine.lost.IsZero() {
		s.engine.lost = now
	}
}

// engineListed notes how a list of the containers ended at now.
func (s *Supervisor) engineListed(now time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &s.engine
	switch {
	case err != nil:
		if e.lost.IsZero() {
			e.lost = now
		}
		e.unreachable = true
	case e.unreachable:
		e.spans = append(e.spans, reconcile.Span{From: e.lost, To: now})
		s.cfg.Log.Warn("the engine is back; exits while it was unreachable are its own stops, not crashes",
			"from", e.lost, "to", now)
		e.lost, e.unreachable = time.Time{}, false
	default:
		e.lost = time.Time{}
	}
	e.spans = slices.DeleteFunc(e.spans, func(sp reconcile.Span) bool { return now.Sub(sp.To) > keepEngineDown })
}

// engineDown are the engine's recent outages, for the planner.
func (s *Supervisor) engineDown() []reconcile.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.engine.spans)
}
