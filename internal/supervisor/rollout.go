package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/rollout"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// rolls is the rollout state of each service as the last pass left it, by
// project/service, for the autoscaler's hold and `tend ps`.
type rolls struct {
	mu sync.Mutex
	by map[string]rolled
}

// rolled is a service's rollout state and its replicas on each side, as a pass saw them.
type rolled struct {
	st       rollout.State
	old, new int
}

func (r *rolls) set(key string, st rollout.State, cs []runtime.Container) {
	v := rolled{st: st}
	for _, c := range cs {
		if c.Hash == st.Target {
			v.new++
		} else {
			v.old++
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = map[string]rolled{}
	}
	r.by[key] = v
}

func (r *rolls) get(key string) rolled {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.by[key]
}

// rolloutPass is what the rollout planner decided for a project's services this pass.
type rolloutPass map[string]rollout.Plan

// rollouts runs the rollout planner over the project's services whose
// replicas run another spec, or whose rollout is under way, and stores
// what it decides (a rollback's new version first, then the state).
func (s *Supervisor) rollouts(p *spec.Project, cs []runtime.Container, health map[string]reconcile.Health, now time.Time) rolloutPass {
	states, err := s.cfg.Store.Rollouts(p.Name)
	if err != nil {
		s.cfg.Log.Error("read rollouts", "project", p.Name, "err", err)
		return nil
	}
	out := rolloutPass{}
	proven := map[string]bool{}
	s.mu.Lock()
	for id := range s.ready {
		proven[id] = true
	}
	s.mu.Unlock()
	var versions []store.Record
	var stats []proxy.ServiceStats
	for i := range p.Services {
		svc := &p.Services[i]
		st := states[svc.Name]
		mine := serviceContainers(cs, svc.Name)
		job := svc.Replicas == 0 || svc.Restart.Condition == spec.RestartNone // the reconciler replaces it as it is
		if !st.Active() && (job || (st.Target == svc.Hash() && !staleReplicas(svc, mine))) {
			s.rolls.set(countKey(p.Name, svc.Name), st, mine)
			continue
		}
		if versions == nil {
			if versions, err = s.cfg.Store.PastVersions(p.Name); err != nil {
				s.cfg.Log.Error("read versions", "project", p.Name, "err", err)
				return nil
			}
			stats = s.TrafficStats()
		}
		plan := rollout.Decide(rollout.Observed{Project: p.Name, Service: svc, Versions: serviceVersions(versions, svc.Name),
			Containers: mine, Health: health, Proven: proven, Figures: slotFigures(stats, p.Name, svc.Name)}, st, now)
		if plan.Revert != nil {
			if err := s.revert(p.Name, svc.Name, *plan.Revert, st.Target); err != nil {
				s.cfg.Log.Warn("roll back", "project", p.Name, "service", svc.Name, "err", err)
				continue
			}
		}
		if !sameState(plan.State, st) {
			if err := s.cfg.Store.PutRollout(p.Name, svc.Name, plan.State); err != nil {
				s.cfg.Log.Error("write rollout", "project", p.Name, "service", svc.Name, "err", err)
				continue
			}
		}
		s.rolls.set(countKey(p.Name, svc.Name), plan.State, mine)
		for _, e := range plan.Events {
			s.journal(store.Entry{Project: p.Name, Service: svc.Name, Slot: e.Slot, Action: e.Action, Reason: e.Reason, Message: e.Message})
		}
		if plan.Revert != nil {
			s.Poke() // the next pass plans the rollback on the new version
		}
		out[svc.Name] = plan
	}
	return out
}

func serviceContainers(cs []runtime.Container, service string) []runtime.Container {
	var out []runtime.Container
	for _, c := range cs {
		if c.Service == service {
			out = append(out, c)
		}
	}
	return out
}

// staleReplicas tells whether a desired slot of svc holds a container of another spec.
func staleReplicas(svc *spec.Service, cs []runtime.Container) bool {
	hash := svc.Hash()
	for _, c := range cs {
		if c.Slot >= 1 && c.Slot <= svc.Replicas && c.Hash != hash {
			return true
		}
	}
	return false
}

func sameState(a, b rollout.State) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// serviceVersions are the service's specs in the kept versions, newest first.
func serviceVersions(recs []store.Record, service string) []rollout.Version {
	var out []rollout.Version
	for _, rec := range recs {
		if svc, ok := rec.Project.Service(service); ok {
			out = append(out, rollout.Version{Number: rec.Version, Service: *svc})
		}
	}
	return out
}

// slotFigures are the proxy's figures of each slot of a service.
func slotFigures(stats []proxy.ServiceStats, project, service string) map[int]rollout.Figures {
	out := map[int]rollout.Figures{}
	for _, st := range stats {
		if st.Project != project || st.Service != service {
			continue
		}
		for _, r := range st.Replicas {
			_, n, _ := strings.Cut(r.Replica, "/")
			slot, err := strconv.Atoi(n)
			if err != nil {
				continue
			}
			f := rollout.Figures{P95: r.P95, Errors: r.Codes["5xx"]}
			for _, v := range r.Codes {
				f.Requests += v
			}
			out[slot] = f
		}
	}
	return out
}

// revert stores the spec a failed rollout came from as the service's
// desired state, a new version, unless a `tend up` changed it meanwhile.
func (s *Supervisor) revert(project, service string, v rollout.Version, from string) error {
	rec, err := s.cfg.Store.Project(project)
	if err != nil {
		return err
	}
	cur, ok := rec.Project.Service(service)
	if !ok || cur.Hash() != from {
		return errs.E(errs.Conflict, "service %s changed while its rollout failed; not rolling back", service)
	}
	back := v.Service
	back.Replicas = cur.Replicas // the count is not what failed
	p := rec.Project
	p.Services = slices.Clone(p.Services)
	for i := range p.Services {
		if p.Services[i].Name == service {
			p.Services[i] = back
		}
	}
	_, err = s.cfg.Store.PutProject(p, s.cfg.Clock.Now())
	return err
}

// apply hands the reconciler the rollouts' decisions: it leaves the slots a
// rollout acts on (a service's every slot when it begins a rollback), and
// the rollouts' actions join the plan.
func (ro rolloutPass) apply(plan *reconcile.Result) {
	owned := func(service string, slot int) bool {
		rp, ok := ro[service]
		return ok && (rp.Hold || rp.Owned[slot])
	}
	actions := plan.Actions[:0:0]
	for _, a := range plan.Actions {
		if !owned(a.Service, a.Slot) {
			actions = append(actions, a)
		}
	}
	for k := range plan.History {
		if owned(k.Service, k.Slot) {
			delete(plan.History, k)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ro)) {
		if rp := ro[name]; !rp.Hold {
			actions = append(actions, rp.Actions...)
		}
		if w := ro[name].Wake; !w.IsZero() && (plan.Wake.IsZero() || w.Before(plan.Wake)) {
			plan.Wake = w
		}
	}
	plan.Actions = actions
}

// specs are the slots the rollouts keep on an older spec, for the reconciler.
func (ro rolloutPass) specs() map[reconcile.SlotKey]*spec.Service {
	out := map[reconcile.SlotKey]*spec.Service{}
	for name, rp := range ro {
		for slot, svc := range rp.Pins {
			out[reconcile.SlotKey{Service: name, Slot: slot}] = svc
		}
	}
	return out
}

// rolling tells whether a service's rollout is under way, and how far, for the autoscaler's hold.
func (s *Supervisor) rolling(project, service string) string {
	st := s.rolls.get(countKey(project, service)).st
	if !st.Active() {
		return ""
	}
	if st.Rollback {
		return fmt.Sprintf("rolling back, step %d", st.Step)
	}
	return fmt.Sprintf("rolling out, step %d", st.Step)
}

// RolloutStatus is a service's rollout as `tend ps` shows it.
type RolloutStatus struct {
	Target   string    `json:"target"` // the spec hash rolled to
	From     string    `json:"from,omitempty"`
	Rollback bool      `json:"rollback,omitempty"`
	Step     int       `json:"step"`
	Old      int       `json:"old"` // replicas on another spec
	New      int       `json:"new"` // replicas on the target, replacements next to an old one included
	Paused   bool      `json:"paused,omitempty"`
	Failure  string    `json:"failure,omitempty"`
	Started  time.Time `json:"started,omitzero"`
}

// rolloutStatus is a service's rollout under way as the last pass saw it, or nil.
func (s *Supervisor) rolloutStatus(project, service string) *RolloutStatus {
	r := s.rolls.get(countKey(project, service))
	st := r.st
	if !st.Active() {
		return nil
	}
	return &RolloutStatus{Target: st.Target, From: st.From, Rollback: st.Rollback, Step: st.Step, Old: r.old, New: r.new,
		Paused: st.Paused, Failure: st.Failure, Started: st.Started}
}

// Rollback rolls a service back by hand to the spec it ran before: the one
// its rollout under way came from, else the newest kept version of another spec.
func (s *Supervisor) Rollback(ctx context.Context, project, service string) (string, error) {
	rec, err := s.cfg.Store.Project(project)
	if err != nil {
		return "", err
	}
	cur, ok := rec.Project.Service(service)
	if !ok {
		return "", errs.E(errs.NotFound, "project %q has no service %q", project, service)
	}
	versions, err := s.cfg.Store.PastVersions(project)
	if err != nil {
		return "", err
	}
	states, err := s.cfg.Store.Rollouts(project)
	if err != nil {
		return "", err
	}
	st, hash := states[service], cur.Hash()
	if st.Active() && st.Rollback {
		return "", errs.E(errs.Conflict, "service %q is rolling back already (step %d)", service, st.Step)
	}
	var back *rollout.Version
	for _, v := range serviceVersions(versions, service) {
		h := v.Service.Hash()
		if (st.Active() && h == st.From && st.From != hash) || (!st.Active() && h != hash) {
			back = &v
			break
		}
	}
	if back == nil {
		return "", errs.E(errs.Conflict, "service %q has no earlier spec kept to roll back to", service)
	}
	if err := s.revert(project, service, *back, hash); err != nil {
		return "", err
	}
	next := rollout.State{Target: back.Service.Hash(), From: hash, Rollback: true}
	if err := s.cfg.Store.PutRollout(project, service, next); err != nil {
		return "", err
	}
	msg := fmt.Sprintf("rolling back from %s to version %d (%s)", hash, back.Number, next.Target)
	s.journal(store.Entry{Project: project, Service: service, Action: "rollback", Reason: "requested", Message: msg})
	s.Poke()
	return msg, nil
}
