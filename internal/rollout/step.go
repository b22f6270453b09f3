package rollout

import (
	"fmt"
	"slices"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// surges decides for the replacements started next to a slot's own
// container on an older spec: a replacement of the target takes over once
// ready, one of another spec (a rollout superseded or rolled back) goes.
func (p *planner) surges() {
	for _, s := range p.slots {
		for _, c := range s.surges {
			switch {
			case p.failed:
				return
			case c.Hash != p.target:
				p.act(reconcile.Remove, s.n, c.ID, "", "%s runs a spec the service no longer rolls to", c.Name)
			case s.own != nil && s.own.Hash == p.target:
				// the reconciler's own replacement of a sick replica
			case c.State == runtime.Created:
				p.act(reconcile.Start, s.n, c.ID, "", "%s was created but not started", c.Name)
			case c.State == runtime.Exited || c.State == runtime.Dead:
				p.fail(s, c, "exited", exitText(c))
			case p.sick(c):
				hl := p.o.Health[c.ID]
				p.fail(s, c, string(hl.Cause), hl.Detail)
			case c.State == runtime.Running && p.o.Health[c.ID].Ready:
				old := ""
				if s.own != nil {
					old = s.own.ID
				}
				p.act(reconcile.Takeover, s.n, old, c.ID, "step %d: the new replica %s is ready; it takes over", p.plan.State.Step, c.Name)
			case c.State == runtime.Running:
				p.owned(s.n)
				if due := c.Created.Add(spec.ReadyDeadline); p.now.Before(due) {
					p.wake(due)
				} else {
					p.fail(s, c, "not-ready", fmt.Sprintf("not ready within %s", spec.ReadyDeadline))
				}
			default:
				p.owned(s.n) // restarting, paused: an event follows
			}
		}
	}
}

func (p *planner) owned(n int) { p.plan.Owned[n] = true }

// sick tells whether a new replica is condemned: by a log rule at any
// time, by its probes or health check once it has been ready.
func (p *planner) sick(c runtime.Container) bool {
	hl := p.o.Health[c.ID]
	return hl.Sick && (p.o.Proven[c.ID] || hl.Cause == reconcile.ReasonLogMatch)
}

// check watches the new replicas (made since the rollout began) on their
// own slots: one that exited, fell sick, is not ready by the deadline, or
// answers clearly worse than the old replicas through the proxy fails the step.
func (p *planner) check() {
	st := &p.plan.State
	old := p.oldFigures()
	anyWorse := false
	for _, s := range p.slots {
		c := s.own
		if c == nil || c.Hash != p.target || c.Created.Before(st.Started) || slices.Contains(st.Failed, c.ID) {
			continue
		}
		hl := p.o.Health[c.ID]
		switch {
		case c.State == runtime.Exited || c.State == runtime.Dead:
			p.fail(s, *c, "exited", exitText(*c))
		case p.sick(*c):
			p.fail(s, *c, string(hl.Cause), hl.Detail)
		case c.State == runtime.Running && !hl.Ready && !p.now.Before(c.Created.Add(spec.ReadyDeadline)):
			p.fail(s, *c, "not-ready", fmt.Sprintf("not ready within %s", spec.ReadyDeadline))
		case c.State == runtime.Running && !hl.Ready:
			p.wake(c.Created.Add(spec.ReadyDeadline))
		case c.State == runtime.Running && !st.Rollback:
			if check, detail, bad := worse(p.o.Figures[s.n], old); bad {
				anyWorse = true
				if st.Worse.IsZero() {
					st.Worse = p.now
				}
				if p.now.Sub(st.Worse) >= worseFor {
					p.fail(s, *c, check, detail)
				} else {
					p.wake(st.Worse.Add(worseFor))
				}
			}
		}
		if p.failed {
			return
		}
	}
	if !anyWorse {
		st.Worse = time.Time{}
	}
}

// oldFigures are the old replicas' figures now, summed (p95: the worst), or
// the baseline the step began with when too few requests reached them.
func (p *planner) oldFigures() Figures {
	var f Figures
	for _, s := range p.slots {
		if s.own == nil || s.own.Hash == p.target || len(s.surges) > 0 || s.own.State != runtime.Running {
			continue
		}
		g := p.o.Figures[s.n]
		f.Requests += g.Requests
		f.Errors += g.Errors
		f.P95 = max(f.P95, g.P95)
	}
	if f.Requests < minRequests {
		return p.plan.State.Baseline
	}
	return f
}

// worse tells whether a new replica's figures are clearly worse than the old ones'.
func worse(n, old Figures) (string, string, bool) {
	if n.Requests < minRequests || old.Requests < minRequests {
		return "", "", false
	}
	nr, or := float64(n.Errors)/float64(n.Requests), float64(old.Errors)/float64(old.Requests)
	if n.Errors >= minErrors && nr > or+errorMargin {
		return "error-ratio", fmt.Sprintf("5xx on %.1f%% of %d requests, the old replicas %.1f%% of %d",
			100*nr, n.Requests, 100*or, old.Requests), true
	}
	if n.P95 > p95Factor*old.P95 && n.P95-old.P95 > p95Margin {
		return "latency", fmt.Sprintf("p95 %s over %d requests, the old replicas %s over %d",
			n.P95.Round(time.Millisecond), n.Requests, old.P95.Round(time.Millisecond), old.Requests), true
	}
	return "", "", false
}

// fail applies the failure action to a new replica that failed its check.
func (p *planner) fail(s slot, c runtime.Container, check, detail string) {
	st := &p.plan.State
	st.Failed = append(slices.Clip(st.Failed), c.ID)
	what := fmt.Sprintf("%s/%d: the new replica %s: %s (%s)", p.svc.Name, s.n, c.Name, check, detail)
	p.owned(s.n)
	if float64(len(st.Failed)) <= p.config().MaxFailureRatio*float64(p.svc.Replicas) {
		p.event("rollout-step", check, s.n, "%s; tolerated: %d of %d replicas may fail (max_failure_ratio %g)",
			what, len(st.Failed), p.svc.Replicas, p.config().MaxFailureRatio)
		p.dropFailed(s, c)
		return
	}
	p.failed = true
	st.Failure = check + ": " + detail
	switch p.config().FailureAction {
	case spec.ActionContinue:
		p.failed = false
		p.event("rollout-step", check, s.n, "%s; continuing (failure_action continue)", what)
		if c.Name == runtime.SurgeName(p.o.Project, p.svc, s.n) && s.own != nil {
			p.act(reconcile.Takeover, s.n, s.own.ID, c.ID, "step %d: %s takes over in spite of its failure (failure_action continue)", st.Step, c.Name)
		}
		return
	case spec.ActionRollback:
		if v, ok := p.version(st.From); ok && !st.Rollback {
			p.plan.Revert = &v
			p.plan.Hold = true
			p.event("rollback", check, s.n, "%s; rolling back to version %d (%s)", what, v.Number, st.From)
			*st = State{Target: st.From, From: st.Target, Rollback: true, Started: p.now, Failure: st.Failure}
			return
		}
		what += "; no stored version to roll back to"
	}
	st.Paused = true
	p.event("rollout", "paused", s.n, "%s; paused until `tend up` or `tend rollback`", what)
	p.dropFailed(s, c)
}

// dropFailed removes a failed replacement started next to an old replica,
// which keeps serving.
func (p *planner) dropFailed(s slot, c runtime.Container) {
	if c.Name == runtime.SurgeName(p.o.Project, p.svc, s.n) {
		p.act(reconcile.Remove, s.n, c.ID, "", "the new replica %s failed; %s stays", c.Name, ownName(s))
	}
}

func ownName(s slot) string {
	if s.own == nil {
		return "the slot's old replica"
	}
	return s.own.Name
}

// advance moves the rollout on: once the step's new replicas are ready and
// their monitor period (and the delay) is over, the next step begins; with
// none left, the rollout is done.
func (p *planner) advance() {
	st := &p.plan.State
	for _, n := range st.Slots {
		if n > len(p.slots) {
			continue // scaled in meanwhile
		}
		s := p.slots[n-1]
		switch {
		case len(s.surges) > 0, s.own == nil:
			return // under way (a missing replica is the reconciler's to make)
		case s.own.Hash != p.target:
			p.replace(s) // the step's action was lost (tend stopped, or the slot was busy): again
			return
		case s.own.State != runtime.Running || !p.o.Health[s.own.ID].Ready:
			return
		}
	}
	if len(st.Slots) > 0 {
		if st.ReadyAt.IsZero() {
			st.ReadyAt = p.now
		}
		if end := st.ReadyAt.Add(p.config().Monitor); p.now.Before(end) {
			p.wake(end)
			p.wake(p.now.Add(time.Second)) // the proxy's figures are weighed meanwhile
			return
		}
		if next := st.ReadyAt.Add(p.config().Monitor + p.config().Delay); p.now.Before(next) {
			p.wake(next)
			return
		}
	}
	todo := p.todo()
	if len(todo) == 0 {
		if p.stale() {
			return // a replacement of another spec is still going
		}
		st.Done, st.Slots = p.now, nil
		action, what := "rollout", "rolled out"
		if st.Rollback {
			action, what = "rollback", "rolled back"
		}
		p.event(action, "done", 0, "%s %s to %s: %d replicas in %s, %d steps", p.svc.Name, what, p.target, p.svc.Replicas,
			p.now.Sub(st.Started).Round(100*time.Millisecond), st.Step)
		return
	}
	todo = todo[:min(len(todo), p.config().Parallelism)]
	st.Step++
	st.Slots, st.StepAt, st.ReadyAt = nil, p.now, time.Time{}
	st.Baseline = p.oldFigures()
	names := ""
	for _, s := range todo {
		st.Slots = append(st.Slots, s.n)
		names += fmt.Sprintf(" %s/%d", p.svc.Name, s.n)
		p.replace(s)
	}
	p.event("rollout-step", "step", 0, "step %d:%s to %s, %s (%d of %d replicas on it)", st.Step, names, p.target, p.order(),
		p.onTarget(), p.svc.Replicas)
}

// todo are the slots still to roll, the ones not serving first.
func (p *planner) todo() []slot {
	var out []slot
	for _, s := range p.slots {
		if s.own != nil && s.own.Hash != p.target && len(s.surges) == 0 {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b slot) int { return serving(a) - serving(b) })
	return out
}

func serving(s slot) int {
	if s.own.State == runtime.Running {
		return 1
	}
	return 0
}

func (p *planner) onTarget() int {
	n := 0
	for _, s := range p.slots {
		if s.own != nil && s.own.Hash == p.target {
			n++
		}
	}
	return n
}

// replace starts a slot's step: start-first, a new replica next to the old
// one (which drains and stops once the new one is ready); stop-first, the
// old one goes first.
func (p *planner) replace(s slot) {
	delete(p.plan.Pins, s.n)
	if p.order() == spec.StopFirst || s.own.State != runtime.Running {
		p.act(reconcile.Replace, s.n, s.own.ID, "", "step %d: replacing %s stop-first", p.plan.State.Step, s.own.Name)
		return
	}
	p.act(reconcile.Surge, s.n, s.own.ID, "", "step %d: starting a new replica next to %s", p.plan.State.Step, s.own.Name)
}

func exitText(c runtime.Container) string {
	if c.StartedAt.IsZero() || c.FinishedAt.Before(c.StartedAt) {
		return fmt.Sprintf("exited with code %d", c.ExitCode)
	}
	return fmt.Sprintf("exited with code %d after %s", c.ExitCode, c.FinishedAt.Sub(c.StartedAt).Round(time.Millisecond))
}
