package rollout

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// Version is a service's spec as one stored version of its project holds it.
type Version struct {
	Number  int          `json:"number"` // the project's version
	Service spec.Service `json:"service"`
}

// Figures are what the proxy measured of one slot over its window.
type Figures struct {
	Requests uint64        `json:"requests,omitempty"`
	Errors   uint64        `json:"errors,omitempty"` // 5xx answers
	P95      time.Duration `json:"p95,omitempty"`
}

// Observed is what the planner is given of one service.
type Observed struct {
	Project string
	// Service is the desired spec, with the count chosen for it.
	Service *spec.Service
	// Versions are the service's specs in the project's stored versions,
	// newest first; the versions a replica may be rolled back to.
	Versions []Version
	// Containers are the service's, the replacements started next to a slot's own included.
	Containers []runtime.Container
	Health     map[string]reconcile.Health // by container ID
	// Proven are the running containers seen ready since they started: a
	// failing liveness probe fails a new replica only once it was ready
	// (before, it is starting, and the readiness deadline applies).
	Proven  map[string]bool
	Figures map[int]Figures // by slot; nil without a proxy
}

// State is a service's rollout as the store keeps it: a restarted tend
// continues from it. The zero State is no rollout.
type State struct {
	Target string `json:"target"`         // the spec hash rolled to
	From   string `json:"from,omitempty"` // the spec hash rolled from: the one a failure returns to
	// Rollback: this rollout undoes a failed one or was asked for by
	// `tend rollback` (rollback_config applies, proxy figures are not weighed).
	Rollback bool      `json:"rollback,omitempty"`
	Started  time.Time `json:"started,omitzero"` // zero: not begun (tend rollback stored it)
	Step     int       `json:"step,omitempty"`   // steps begun
	Slots    []int     `json:"slots,omitempty"`  // the slots of the current step
	StepAt   time.Time `json:"step_at,omitzero"`
	ReadyAt  time.Time `json:"ready_at,omitzero"` // the current step's new replicas all ready: its monitor began
	// Baseline is the old replicas' figures when the step began, weighed
	// against a new replica when no old one serves any more.
	Baseline Figures  `json:"baseline,omitzero"`
	Failed   []string `json:"failed,omitempty"` // new replicas counted as failed, by container ID
	// Worse is when a new replica was first seen answering clearly worse
	// than the old ones, in the run of passes that saw it so; it fails once
	// that lasted worseFor (one window's spike is not a verdict).
	Worse  time.Time `json:"worse,omitzero"`
	Paused bool      `json:"paused,omitempty"`
	// Failure is the check that failed and its figures, for ps and the journal.
	Failure string    `json:"failure,omitempty"`
	Done    time.Time `json:"done,omitzero"`
}

// Active tells whether a rollout is under way (begun, not done, maybe paused).
func (st State) Active() bool { return st.Target != "" && st.Done.IsZero() }

// Event is a journal record the plan asks for.
type Event struct {
	Action  string // rollout, rollout-step or rollback
	Reason  string
	Slot    int
	Message string
}

// Plan is the planner's answer for one service.
type Plan struct {
	State State // to store when it differs from the one given
	// Pins are the slots the reconciler keeps on an older spec meanwhile.
	Pins map[int]*spec.Service
	// Owned are the slots the rollout acts on: the reconciler leaves them this pass.
	Owned map[int]bool
	// Hold: the reconciler leaves the whole service alone this pass (a rollback begins).
	Hold    bool
	Actions []reconcile.Action
	// Revert asks the caller to store this spec as the service's desired
	// state (a new version) before State: the rollback's target.
	Revert *Version
	Events []Event
	Wake   time.Time
}

// Reasons of the plan's actions and events.
const (
	ReasonRollout    reconcile.Reason = "rollout"
	ReasonSuperseded reconcile.Reason = "superseded"
)

// Thresholds of "clearly worse" through the proxy: a new replica is failed
// when, over at least minRequests on each side, its 5xx ratio is above the
// old replicas' by errorMargin (with at least minErrors errors), or its p95
// is p95Factor times theirs and p95Margin above.
const (
	minRequests = 20
	minErrors   = 5
	errorMargin = 0.05
	p95Factor   = 3
	p95Margin   = 20 * time.Millisecond
	worseFor    = 2 * time.Second
)

// slot is one desired slot as observed: its own container and the
// replacements started next to it.
type slot struct {
	n      int
	own    *runtime.Container
	surges []runtime.Container
}

// planner holds one pass over one service.
type planner struct {
	o      Observed
	svc    *spec.Service
	target string
	now    time.Time
	slots  []slot
	plan   Plan
	failed bool
}

// Decide returns the next step of the service's rollout at now: what to
// start, take over or remove, which slots stay on their older spec, and
// whether to roll back.
func Decide(o Observed, st State, now time.Time) Plan {
	p := &planner{o: o, svc: o.Service, target: o.Service.Hash(), now: now,
		plan: Plan{State: st, Pins: map[int]*spec.Service{}, Owned: map[int]bool{}}}
	if p.svc.Replicas == 0 || p.svc.Restart.Condition == spec.RestartNone {
		p.plan.State = State{} // a job, or nothing to run: the reconciler replaces it as it is
		return p.plan
	}
	p.observe()
	p.begin()
	cur := &p.plan.State
	if !cur.Active() {
		return p.plan
	}
	p.pin()
	p.surges()
	if !p.failed {
		p.check()
	}
	if !p.failed && !cur.Paused {
		p.advance()
	}
	return p.plan
}

// observe sorts the service's containers into its desired slots.
func (p *planner) observe() {
	for n := 1; n <= p.svc.Replicas; n++ {
		s := slot{n: n}
		surge := runtime.SurgeName(p.o.Project, p.svc, n)
		var own []runtime.Container
		for _, c := range p.o.Containers {
			switch {
			case c.Slot != n:
			case c.Name == surge:
				s.surges = append(s.surges, c)
			default:
				own = append(own, c)
			}
		}
		if len(own) > 0 {
			best := slices.MaxFunc(own, func(a, b runtime.Container) int {
				return cmp.Or(cmp.Compare(score(a, p.target), score(b, p.target)), a.Created.Compare(b.Created))
			})
			s.own = &best
		}
		p.slots = append(p.slots, s)
	}
}

func score(c runtime.Container, target string) int {
	n := 0
	if c.Hash == target {
		n += 2
	}
	if c.State == runtime.Running {
		n++
	}
	return n
}

// stale tells whether any slot still runs another spec than the target.
func (p *planner) stale() bool {
	for _, s := range p.slots {
		if s.own != nil && s.own.Hash != p.target {
			return true
		}
		for _, c := range s.surges {
			if c.Hash != p.target {
				return true
			}
		}
	}
	return false
}

// begin starts a rollout when the desired spec is new, or one that `tend
// rollback` stored; a rollout to another target supersedes the one under way.
func (p *planner) begin() {
	st := &p.plan.State
	if st.Target == p.target && !st.Started.IsZero() {
		return
	}
	if st.Target == p.target { // stored by tend rollback, not begun
		st.Started = p.now
		p.event("rollback", "started", 0, "rolling %s back to its previous spec (%s), %s", p.svc.Name, p.target, p.stepText())
		return
	}
	if !p.stale() {
		// Nothing runs another spec: the replicas are made from this one anyway.
		*st = State{Target: p.target, Done: p.now}
		return
	}
	from, rollback := p.stable(*st), false
	if st.Active() && !st.Rollback && p.target == st.From {
		from, rollback = st.Target, true // back to where the rollout came from: a rollback
	}
	superseded := st.Active()
	*st = State{Target: p.target, From: from, Rollback: rollback, Started: p.now}
	if superseded {
		p.event("rollout", string(ReasonSuperseded), 0, "a new spec (%s) supersedes the rollout under way; %s", p.target, p.stepText())
		return
	}
	p.event("rollout", "started", 0, "rolling %s from %s to %s: %s", p.svc.Name, orUnknown(from), p.target, p.stepText())
}

// stable is the spec known to have run whole before the new one: the one a failure returns to.
func (p *planner) stable(st State) string {
	switch {
	case st.Target != "" && !st.Active(), st.Active() && st.Rollback:
		return st.Target
	case st.Active():
		return st.From
	}
	counts := map[string]int{}
	for _, s := range p.slots {
		if s.own != nil && s.own.Hash != p.target {
			counts[s.own.Hash]++
		}
	}
	best := ""
	for h, n := range counts {
		if best == "" || n > counts[best] || (n == counts[best] && h < best) {
			best = h
		}
	}
	return best
}

// config is the update_config that applies, or the rollback_config in a rollback.
func (p *planner) config() spec.Update {
	if p.plan.State.Rollback {
		return p.svc.Rollout.Rollback.Applied(true)
	}
	return p.svc.Rollout.Update.Applied(false)
}

func (p *planner) stepText() string {
	c := p.config()
	return fmt.Sprintf("%d replicas, %d at a time, %s, monitor %s", p.svc.Replicas, min(c.Parallelism, p.svc.Replicas), p.order(), c.Monitor)
}

// order is the step's order: stop-first when asked for, or when a replica
// holds what a second one cannot (a fixed address, the host's ports).
func (p *planner) order() string {
	if p.svc.StopFirst() {
		return spec.StopFirst
	}
	return p.config().Order
}

// version finds a stored spec by its hash.
func (p *planner) version(hash string) (Version, bool) {
	for _, v := range p.o.Versions {
		if v.Service.Hash() == hash {
			return v, true
		}
	}
	return Version{}, false
}

// pin keeps each running replica of an older, known spec on it (any such
// replica while paused): the reconciler heals it as what it is until its
// step. Anything else not on the target (stopped, or of a spec no version
// holds) waits for its step, which replaces it first.
func (p *planner) pin() {
	for _, s := range p.slots {
		c := s.own
		if c == nil || c.Hash == p.target {
			continue
		}
		if v, ok := p.version(c.Hash); ok && (c.State == runtime.Running || p.plan.State.Paused) {
			svc := v.Service
			p.plan.Pins[s.n] = &svc
			continue
		}
		p.plan.Owned[s.n] = true
	}
}

func (p *planner) act(k reconcile.Kind, n int, id, surge string, format string, args ...any) {
	p.plan.Owned[n] = true
	p.plan.Actions = append(p.plan.Actions, reconcile.Action{Kind: k, Service: p.svc.Name, Slot: n, Container: id, Surge: surge,
		Reason: ReasonRollout, Message: fmt.Sprintf(format, args...)})
}

func (p *planner) event(action, reason string, n int, format string, args ...any) {
	p.plan.Events = append(p.plan.Events, Event{Action: action, Reason: reason, Slot: n, Message: fmt.Sprintf(format, args...)})
}

func (p *planner) wake(t time.Time) {
	if p.plan.Wake.IsZero() || t.Before(p.plan.Wake) {
		p.plan.Wake = t
	}
}

func orUnknown(h string) string {
	if h == "" {
		return "an unknown spec"
	}
	return h
}
