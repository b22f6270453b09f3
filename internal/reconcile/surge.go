package reconcile

import (
	"fmt"
	"slices"
	"time"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// Health is what tend's own checks say of a running container, beside the
// engine's state: the supervisor gathers it from probes, the engine's health
// checks and log rules.
type Health struct {
	// Sick means the replica must be replaced: its liveness probe fails, the
	// engine calls it unhealthy, or a log rule condemned it.
	Sick  bool
	Cause Reason // ReasonLiveness, ReasonUnhealthy, ReasonLogMatch or ReasonHung
	// Detail says why, with the evidence, for the journal: "liveness probe
	// failed 3 times: HTTP 503: sick", "log rule 1 matched: FATAL db lost".
	Detail string
	// Ready means it may take traffic and may take over from a sick replica.
	Ready bool
	// Suspect means its liveness probe, passing until now, has begun to
	// fail but not yet as often as its threshold: a standby may start.
	Suspect bool
	// ReadyRun is the run (by its start time) tend last saw ready, kept after
	// the container exits: tend may show a replica ready (`tend ps`) and lose
	// it before a pass notes it in the slot's history.
	ReadyRun time.Time
}

// splitSurges parts a slot's containers into the slot's own and the
// replacements started next to a sick one (named runtime.SurgeName).
func splitSurges(cs []runtime.Container, project string, svc *spec.Service, k SlotKey) (own, surges []runtime.Container) {
	name := runtime.SurgeName(project, svc, k.Slot)
	for _, c := range cs {
		if c.Name == name {
			surges = append(surges, c)
		} else {
			own = append(own, c)
		}
	}
	return own, surges
}

// sick starts a replacement next to a running replica that must go, so the
// service never runs short of ready replicas. Replacing counts as a restart
// (see count): the streak, its backoff and max_attempts apply as to a crash.
func (s *slotPlanner) sick(c *runtime.Container, hl Health) {
	n, delay, ok := s.mayReplace(c, hl.Detail)
	if !ok {
		return
	}
	if s.svc.StopFirst() {
		s.count()
		s.fresh()
		s.act(Replace, c.ID, hl.Cause, "%s; replacing %s stop-first, as a second container cannot hold its %s (restart %d of this streak, backoff %s)",
			hl.Detail, c.Name, s.svc.StopFirstReason(), n+1, delay.Round(time.Millisecond))
		return
	}
	s.act(Surge, c.ID, hl.Cause, "%s; starting a replacement next to %s (restart %d of this streak, backoff %s)",
		hl.Detail, c.Name, n+1, delay.Round(time.Millisecond))
}

// standby starts a replacement next to a replica whose liveness probe has
// begun to fail, before it reaches its threshold: if the replica is found
// dead, the standby is ready to take over at once; if it recovers, the
// standby goes. It waits for the slot's backoff like a replacement.
func (s *slotPlanner) standby(c *runtime.Container, hl Health) {
	if s.svc.StopFirst() {
		return // no room for a second container (see sick)
	}
	if _, _, ok := s.mayReplace(c, hl.Detail); !ok {
		return
	}
	s.act(Surge, c.ID, ReasonSuspect, "%s; starting a standby next to %s in case it fails", hl.Detail, c.Name)
}

// mayReplace applies the slot's restart budget to a replacement of c: it
// says how many restarts the streak has had and the backoff, or waits (or
// gives up) and says no.
func (s *slotPlanner) mayReplace(c *runtime.Container, why string) (int, time.Duration, bool) {
	h := &s.history
	if h.GaveUp && runOf(c).Equal(h.Settled) {
		s.wait(time.Time{}, "gave up after %s; `tend up` tries again", restarts(len(h.Streak)))
		return 0, 0, false
	}
	b := s.svc.Tend.Backoff
	if !c.StartedAt.IsZero() && s.now.Sub(c.StartedAt) >= b.ResetAfter && !s.streakSince(c) {
		h.Streak = nil // it ran long enough before it fell sick: a new streak
	}
	p := s.svc.Restart
	if n := attemptsInWindow(h.Streak, p.Window, s.now); p.MaxAttempts > 0 && n >= p.MaxAttempts {
		h.Settled, h.GaveUp = runOf(c), true
		s.act(Settle, c.ID, ReasonMaxAttempts, "%s; left running: gave up after %s%s (max_attempts %d)",
			why, restarts(n), windowText(p.Window), p.MaxAttempts)
		return 0, 0, false
	}
	n := len(h.Streak)
	delay := Backoff(p, b, n, s.key.String())
	if n > 0 {
		if due := h.Streak[n-1].Add(delay); s.now.Before(due) {
			s.wait(due, "%s; replacement %d in %s", why, n+1, due.Sub(s.now).Round(time.Millisecond))
			return 0, 0, false
		}
	}
	return n, delay, true
}

// count records a replacement of the slot (one that took over, or one that
// failed before it could) as a restart of its streak.
func (s *slotPlanner) count() {
	h := &s.history
	h.Streak = append(slices.Clip(h.Streak), s.now)
	if len(h.Streak) > streakCap {
		h.Streak = h.Streak[len(h.Streak)-streakCap:]
	}
	h.Restarts++
	h.GaveUp = false
}

// streakSince tells whether the last restart of the streak came after c
// started: c is then the replacement of that restart, and its time alive does
// not yet prove the streak over.
func (s *slotPlanner) streakSince(c *runtime.Container) bool {
	n := len(s.history.Streak)
	return n > 0 && !s.history.Streak[n-1].Before(c.StartedAt)
}

// surge decides for a slot with a replacement under way: the replacement
// takes over once it is ready, or at once if the old replica is gone; a
// replacement that failed is removed, and the next pass tries again with backoff.
func (s *slotPlanner) surge(old *runtime.Container, next runtime.Container, health map[string]Health) {
	hl := health[next.ID]
	switch {
	case next.Hash != s.svc.Hash():
		s.act(Remove, next.ID, ReasonSpecChanged, "%s runs an older spec", next.Name)
	case next.State == runtime.Created:
		s.act(Start, next.ID, ReasonNotStarted, "%s was created but not started", next.Name)
	case next.State == runtime.Exited || next.State == runtime.Dead:
		s.count()
		s.act(Remove, next.ID, ReasonReplacementFailed, "the replacement %s; the old replica stays until the next try", exitText(&next))
	case hl.Sick:
		s.count()
		s.act(Remove, next.ID, ReasonReplacementFailed, "the replacement is sick too (%s); the old replica stays until the next try", hl.Detail)
	case old == nil:
		s.takeover("", next, ReasonReplacementReady, "the replacement %s takes the slot's name", next.Name)
	case old.State != runtime.Running:
		s.count()
		s.takeover(old.ID, next, ReasonReplacementReady, "%s is %s; the replacement %s takes over", old.Name, stateText(*old), next.Name)
	case !health[old.ID].Sick && !health[old.ID].Suspect && next.State == runtime.Running:
		s.act(Remove, next.ID, ReasonRecovered, "%s passes its checks again; the standby %s goes", old.Name, next.Name)
	case !health[old.ID].Sick:
		s.wait(time.Time{}, "%s is suspect; the standby %s waits", old.Name, next.Name)
	case hl.Ready:
		s.count()
		sick := health[old.ID]
		s.takeover(old.ID, next, sick.Cause, "%s; the replacement %s is ready; stopping %s", sick.Detail, next.Name, old.Name)
	case next.State == runtime.Running:
		s.wait(time.Time{}, "the replacement %s is not ready yet", next.Name)
	}
}

func (s *slotPlanner) takeover(old string, next runtime.Container, r Reason, format string, args ...any) {
	s.history.Container = next.ID
	s.history.Settled = time.Time{}
	s.plan.act(Action{Kind: Takeover, Service: s.key.Service, Slot: s.key.Slot, Container: old, Surge: next.ID,
		Reason: r, Message: fmt.Sprintf(format, args...)})
}
