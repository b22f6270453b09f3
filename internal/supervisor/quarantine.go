package supervisor

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/quarantine"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// A service whose repairs keep failing is quarantined (internal/quarantine
// decides): the reconciler's actions on it are dropped, its containers are
// stopped and kept for inspection, and its routes answer callers with the
// fallback at once. During a half-open trial only the trial slot is repaired.

// isolation is what one pass decided about a project's quarantines.
type isolation struct {
	held     map[string]quarantine.State // services not closed, by name
	replicas map[string]int              // of the held services
	wake     time.Time
}

// isolate steps every service's quarantine machine before the reconciler
// plans. A trial or a restore gives the slots concerned a fresh budget, in
// hist as well, so the plan that follows repairs them at once.
func (s *Supervisor) isolate(ctx context.Context, p *spec.Project, cs []runtime.Container,
	hist map[reconcile.SlotKey]reconcile.History, health map[string]reconcile.Health, now time.Time, seen map[string]uint64) isolation {
	iso := isolation{held: map[string]quarantine.State{}, replicas: map[string]int{}}
	states, err := s.cfg.Store.Quarantine(p.Name)
	if err != nil {
		s.cfg.Log.Error("read quarantine", "project", p.Name, "err", err)
		return iso
	}
	changed := map[string]quarantine.State{}
	var entries []store.Entry
	byService := map[string][]runtime.Container{} // a service's slots are looked for in its own containers only
	for _, c := range cs {
		byService[c.Service] = append(byService[c.Service], c)
	}
	for i := range p.Services {
		svc := &p.Services[i]
		old := states[svc.Name]
		if s.anyStale(p.Name, svc, seen) {
			// An action on one of its slots is under way, or finished since
			// this pass observed: what it saw (an exit before a restart
			// that is being made) is out of date. The batch pokes the loop.
			if old.Held() {
				iso.held[svc.Name], iso.replicas[svc.Name] = old, svc.Replicas
			}
			continue
		}
		ob := observeService(p, svc, byService[svc.Name], hist, health, now)
		ob.LastReady = s.lastReady(p.Name, svc.Name, ob, now)
		d := quarantine.Step(svc.Budget(), old, ob, now)
		if d.State != old {
			changed[svc.Name] = d.State
		}
		iso.wake = earliest(iso.wake, d.Wake)
		switch d.Change {
		case quarantine.StartTrial:
			s.forgive(p.Name, svc, hist, d.State.TrialSlot)
		case quarantine.Restore:
			s.forgive(p.Name, svc, hist, 0)
		}
		if d.Change != quarantine.None {
			entries = append(entries, store.Entry{Project: p.Name, Service: svc.Name, Slot: d.State.TrialSlot,
				Action: string(d.Change), Reason: string(d.Reason), Message: d.Message})
		}
		if d.State.Held() {
			iso.held[svc.Name], iso.replicas[svc.Name] = d.State, svc.Replicas
		}
	}
	for name := range states {
		if _, ok := p.Service(name); !ok {
			changed[name] = quarantine.State{} // a service gone from the project
		}
	}
	if err := s.cfg.Store.PutQuarantine(p.Name, changed); err != nil {
		s.cfg.Log.Error("write quarantine", "project", p.Name, "err", err)
	}
	s.journal(entries...)
	s.mu.Lock()
	s.held[p.Name] = iso.held
	s.mu.Unlock()
	return iso
}

// anyStale reports whether a slot of svc has an action under way, or one
// that finished since the pass observed (seen: the counts then).
func (s *Supervisor) anyStale(project string, svc *spec.Service, seen map[string]uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for slot := 1; slot <= svc.Replicas; slot++ {
		id := slotID(project, svc.Name, slot)
		if s.busy[id] || s.done[id] != seen[id] {
			return true
		}
	}
	return false
}

// observeService is what the quarantine machine needs of svc's slots.
func observeService(p *spec.Project, svc *spec.Service, cs []runtime.Container,
	hist map[reconcile.SlotKey]reconcile.History, health map[string]reconcile.Health, now time.Time) quarantine.Observed {
	hash := svc.Hash()
	ob := quarantine.Observed{Hash: hash}
	for slot := 1; slot <= svc.Replicas; slot++ {
		k := reconcile.SlotKey{Service: svc.Name, Slot: slot}
		h := hist[k]
		qs := quarantine.Slot{Slot: slot, Repairs: slices.Clone(h.Streak)}
		c, ok := slotContainer(cs, p.Name, svc, k, hash)
		running := ok && c.Hash == hash && c.State == runtime.Running && !c.Held
		qs.Ready = running && health[c.ID].Ready
		switch {
		case running && health[c.ID].Sick:
			qs.Down, qs.DownAt = true, now
		case ok && !running:
			qs.Down, qs.DownAt = true, c.FinishedAt
		case !ok:
			qs.Down = true
		}
		if h.Failures > 0 {
			qs.Repairs = append(qs.Repairs, h.FailedAt)
			qs.Down = true
			if h.FailedAt.After(qs.DownAt) {
				qs.DownAt = h.FailedAt
			}
		}
		ob.Slots = append(ob.Slots, qs)
	}
	return ob
}

// forgive gives svc's slots (one, or all when slot is 0) a fresh restart
// budget, in hist and in the store.
func (s *Supervisor) forgive(project string, svc *spec.Service, hist map[reconcile.SlotKey]reconcile.History, slot int) {
	changed := map[reconcile.SlotKey]reconcile.History{}
	for k, h := range hist {
		if k.Service != svc.Name || slot != 0 && k.Slot != slot {
			continue
		}
		h.Streak, h.GaveUp, h.Settled = nil, false, time.Time{}
		h.Failures, h.FailedAt, h.LastError = 0, time.Time{}, ""
		hist[k], changed[k] = h, h
	}
	if err := s.cfg.Store.PutHistory(project, changed); err != nil {
		s.cfg.Log.Error("write slot memory", "project", project, "err", err)
	}
}

// hold stops the held services' running containers, and ends their held
// exits, except the trial slot's and those the plan settles (filtered):
// kept, not removed, so `docker logs` and `docker inspect` still tell what
// went wrong.
func (s *Supervisor) hold(ctx context.Context, p *spec.Project, cs []runtime.Container, iso isolation, plan *reconcile.Result) {
	for name, st := range iso.held {
		svc, ok := p.Service(name)
		if !ok {
			continue
		}
		settles := map[int]bool{}
		for _, a := range plan.Actions {
			if a.Service == name {
				settles[a.Slot] = true
			}
		}
		s.holdContainers(ctx, p, svc, cs, st.TrialSlot, settles)
	}
}

func (s *Supervisor) holdContainers(ctx context.Context, p *spec.Project, svc *spec.Service, cs []runtime.Container, trial int, planned map[int]bool) {
	var todo []runtime.Container
	s.mu.Lock()
	for _, c := range cs {
		id := slotID(p.Name, c.Service, c.Slot)
		if c.Service != svc.Name || c.Slot == trial || planned[c.Slot] || s.busy[id] || (c.State != runtime.Running && !c.Held) {
			continue
		}
		s.busy[id] = true
		todo = append(todo, c)
	}
	s.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		defer s.Poke()
		ctx := context.WithoutCancel(ctx)
		for _, c := range todo {
			var err error
			if c.Held {
				err = s.cfg.Runtime.Release(ctx, c.ID)
			} else {
				s.drainFor(ctx, c.ID, svc)
				err = s.cfg.Runtime.Stop(ctx, c.ID, grace(svc))
			}
			if err != nil && errs.KindOf(err) != errs.NotFound {
				s.cfg.Log.Warn("stop a quarantined replica", "container", c.Name, "err", err)
			}
			s.mu.Lock()
			id := slotID(p.Name, c.Service, c.Slot)
			delete(s.busy, id)
			s.done[id]++
			s.mu.Unlock()
		}
	}()
}

// filter drops the plan's actions and memory on quarantined services (on
// a trial, all but the trial slot's) and says why those slots wait. A
// settle stays: it repairs nothing (a held exit ends as exited, and a
// compose max_attempts is journaled as given up, as it always was).
func (iso isolation) filter(plan *reconcile.Result, now time.Time) {
	if len(iso.held) == 0 {
		return
	}
	keep := func(service string, slot int) bool {
		st, held := iso.held[service]
		return !held || st.Phase == quarantine.Trial && slot == st.TrialSlot
	}
	settled := map[reconcile.SlotKey]bool{}
	plan.Actions = slices.DeleteFunc(plan.Actions, func(a reconcile.Action) bool {
		if a.Kind == reconcile.Settle {
			settled[reconcile.SlotKey{Service: a.Service, Slot: a.Slot}] = true
			return false
		}
		return !keep(a.Service, a.Slot)
	})
	for k := range plan.History {
		if !keep(k.Service, k.Slot) && !settled[k] {
			delete(plan.History, k)
		}
	}
	plan.Waits = slices.DeleteFunc(plan.Waits, func(w reconcile.Wait) bool { return !keep(w.Service, w.Slot) })
	for name, st := range iso.held {
		for slot := 1; slot <= iso.replicas[name]; slot++ {
			if !keep(name, slot) {
				plan.Waits = append(plan.Waits, reconcile.Wait{Service: name, Slot: slot, Until: st.NextTrial, Message: heldNote(st, now)})
			}
		}
	}
}

// heldNote is what `tend ps` says of a quarantined service's slots.
func heldNote(st quarantine.State, now time.Time) string {
	if st.Phase == quarantine.Trial {
		return fmt.Sprintf("quarantined: on trial on slot %d since %s", st.TrialSlot, st.Since.Format(time.TimeOnly))
	}
	return fmt.Sprintf("quarantined: %s; next trial at %s (in %s)", st.Cause, st.NextTrial.Format(time.TimeOnly),
		max(st.NextTrial.Sub(now), 0).Round(time.Second))
}

// quarantined reports whether a service is held by a quarantine, and why:
// the autoscaler must not scale a service tend has isolated.
func (s *Supervisor) quarantined(project, service string) (bool, string) {
	st, ok := s.heldOf(project)[service]
	if !ok {
		return false, ""
	}
	return true, st.Cause
}

// heldOf is the services of project a quarantine holds: as the last pass
// decided, or as stored before the first pass of a restarted tend.
func (s *Supervisor) heldOf(project string) map[string]quarantine.State {
	s.mu.Lock()
	held, ok := s.held[project]
	s.mu.Unlock()
	if ok {
		return held
	}
	states, err := s.cfg.Store.Quarantine(project)
	if err != nil {
		return nil
	}
	held = map[string]quarantine.State{}
	for name, st := range states {
		if st.Held() {
			held[name] = st
		}
	}
	return held
}

// shield marks the routes of quarantined services isolated: their callers
// get the fallback (HTTP) or a closed connection (TCP) at once. A trial
// replica that is ready takes traffic: its probation is real.
func (s *Supervisor) shield(project string, rs []proxy.Route) {
	s.mu.Lock()
	held := s.held[project]
	s.mu.Unlock()
	for i := range rs {
		st, ok := held[rs[i].Service]
		if !ok {
			continue
		}
		rs[i].Isolated = st.Phase == quarantine.Quarantined ||
			!slices.ContainsFunc(rs[i].Backends, func(b proxy.Backend) bool { return b.Ready })
		if st.Phase == quarantine.Quarantined {
			rs[i].RetryAfter = max(st.NextTrial.Sub(s.cfg.Clock.Now()), time.Second)
		}
	}
}

// Heal lifts a service's quarantine by hand (`tend heal`) and gives its
// slots a fresh restart budget.
func (s *Supervisor) Heal(ctx context.Context, project, service string) (string, error) {
	rec, err := s.cfg.Store.Project(project)
	if err != nil {
		return "", err
	}
	svc, ok := rec.Project.Service(service)
	if !ok {
		return "", errs.E(errs.NotFound, "project %s has no service %q", project, service)
	}
	states, err := s.cfg.Store.Quarantine(project)
	if err != nil {
		return "", err
	}
	hist, err := s.cfg.Store.History(project)
	if err != nil {
		return "", err
	}
	gaveUp := false
	for k, h := range hist {
		gaveUp = gaveUp || k.Service == service && h.GaveUp
	}
	now := s.cfg.Clock.Now()
	d := quarantine.Heal(states[service], now)
	if d.Change == quarantine.None && !gaveUp {
		return "", errs.E(errs.Conflict, "service %s is not quarantined", service)
	}
	if d.Change != quarantine.None {
		if err := s.cfg.Store.PutQuarantine(project, map[string]quarantine.State{service: d.State}); err != nil {
			return "", err
		}
		s.mu.Lock()
		delete(s.held[project], service)
		s.mu.Unlock()
	}
	s.forgive(project, svc, hist, 0)
	msg := d.Message
	if d.Change == quarantine.None {
		msg = "lifted by hand (`tend heal`): slots that gave up get a fresh budget"
	}
	s.journal(store.Entry{Project: project, Service: service, Action: string(quarantine.Restore), Reason: string(quarantine.ReasonHeal), Message: msg})
	s.retraffic()
	s.Poke()
	return msg, nil
}

// describeQuarantine marks the replicas of held services in `tend ps`.
func (s *Supervisor) describeQuarantine(project string, reps []Replica) {
	held := s.heldOf(project)
	for i := range reps {
		r := &reps[i]
		st, ok := held[r.Service]
		if !ok {
			continue
		}
		r.Quarantine = string(st.Phase)
		if st.Phase == quarantine.Quarantined {
			r.NextTrial = st.NextTrial
		}
	}
}

// fallbackOf is what svc's callers get while it is isolated.
func fallbackOf(svc *spec.Service) proxy.Fallback {
	f := svc.Tend.Fallback
	if f.Status == 0 {
		f.Status = spec.DefaultFallbackStatus
	}
	return proxy.Fallback{Status: f.Status, Body: f.Body, Headers: f.Headers}
}

// breakerOf is svc's request breaker, with the defaults.
func breakerOf(svc *spec.Service) proxy.Breaker {
	b := svc.Tend.Breaker.Effective()
	return proxy.Breaker{Off: b.Off, ErrorRatio: b.ErrorRatio, MinRequests: b.MinRequests, Window: b.Window,
		Latency: b.Latency, Open: b.Open}
}

// liftChanged restores, as `tend up` stores p, the quarantined services
// whose spec changed: before the call returns, so `up --wait` does not see
// the old quarantine. (The pass would find it too, a moment later.)
func (s *Supervisor) liftChanged(p *spec.Project) {
	states, err := s.cfg.Store.Quarantine(p.Name)
	if err != nil {
		s.cfg.Log.Error("read quarantine", "project", p.Name, "err", err)
		return
	}
	now := s.cfg.Clock.Now()
	for name, st := range states {
		svc, ok := p.Service(name)
		if !ok || !st.Held() || svc.Hash() == st.Hash {
			continue
		}
		d := quarantine.Step(svc.Budget(), st, quarantine.Observed{Hash: svc.Hash()}, now)
		if d.Change != quarantine.Restore {
			continue
		}
		if err := s.cfg.Store.PutQuarantine(p.Name, map[string]quarantine.State{name: d.State}); err != nil {
			s.cfg.Log.Error("write quarantine", "project", p.Name, "err", err)
			continue
		}
		s.mu.Lock()
		delete(s.held[p.Name], name)
		s.mu.Unlock()
		s.journal(store.Entry{Project: p.Name, Service: name, Action: string(d.Change), Reason: string(d.Reason), Message: d.Message})
	}
}

// lastReady is when a replica of the service was last seen ready by a pass,
// now if one is. It lives in memory only: a restarted tend counts every
// repair within the window again, which errs toward isolating.
func (s *Supervisor) lastReady(project, service string, ob quarantine.Observed, now time.Time) time.Time {
	key := project + "/" + service
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.ContainsFunc(ob.Slots, func(x quarantine.Slot) bool { return x.Ready }) {
		s.readyAt[key] = now
	}
	return s.readyAt[key]
}
