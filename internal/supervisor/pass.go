package supervisor

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/rollout"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// pass observes every project once, plans, and starts the actions. It returns
// the earliest time a plan asked to be woken at (zero: none).
func (s *Supervisor) pass(ctx context.Context) time.Time {
	start := s.cfg.Clock.Now()
	seen := s.doneSnapshot() // before observing: see reconcileProject
	s.flushJournal()         // entries a full disk held back (backlog.go)
	recs, err := s.cfg.Store.Projects()
	if err != nil {
		s.cfg.Log.Error("read projects", "err", err)
		return time.Time{}
	}
	if len(recs) == 0 {
		return time.Time{}
	}
	all, err := s.cfg.Runtime.List(ctx, "")
	s.engineListed(s.cfg.Clock.Now(), err)
	if err != nil {
		s.cfg.Log.Warn("observe containers", "err", err)
		return s.cfg.Clock.Now().Add(time.Second)
	}
	byProject := map[string][]runtime.Container{}
	for _, c := range all {
		byProject[c.Project] = append(byProject[c.Project], c)
	}
	s.forgetGone(all)
	var live []*spec.Project
	for i := range recs {
		if !recs[i].Deleting {
			live = append(live, &recs[i].Project)
		}
	}
	s.watch(live, byProject)
	s.cfg.Log.Debug("observed", "containers", len(all), "took", s.cfg.Clock.Now().Sub(start))
	var wake time.Time
	seenNow := map[string]seenProject{}
	for _, rec := range recs {
		if s.isBusy(rec.Project.Name) {
			continue
		}
		if rec.Deleting {
			if at := s.teardownRetryAt(rec.Project.Name); s.cfg.Clock.Now().Before(at) {
				wake = earliest(wake, at)
			} else if !s.anySlotBusy(rec.Project.Name) {
				s.startTeardown(ctx, rec.Project.Name)
			}
			continue
		}
		health := s.verdicts(&rec.Project, byProject[rec.Project.Name])
		p, at := s.autoscale(ctx, &rec.Project, byProject[rec.Project.Name], health) // the counts chosen apart from the spec
		wake = earliest(wake, at)
		seenNow[rec.Project.Name] = seenProject{p: p, cs: byProject[rec.Project.Name]}
		wake = earliest(wake, s.reconcileProject(ctx, p, byProject[rec.Project.Name], health, seen))
	}
	s.remember(seenNow)
	s.retraffic()
	return wake
}

// earliest is the sooner of two wake-up times, where zero means none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func (s *Supervisor) teardownRetryAt(project string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downs[project].at
}

// teardownFailed schedules the next try of a failed teardown.
func (s *Supervisor) teardownFailed(project string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.downs[project]
	r.failures++
	b := spec.Backoff{Initial: spec.DefaultBackoffInitial, Max: spec.DefaultBackoffMax}
	r.at = s.cfg.Clock.Now().Add(reconcile.Backoff(spec.RestartPolicy{}, b, r.failures, "down "+project))
	s.downs[project] = r
}

func slotID(project string, service string, slot int) string {
	return fmt.Sprintf("%s/%s/%d", project, service, slot)
}

func (s *Supervisor) isBusy(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy[id]
}

// anySlotBusy tells whether an action batch still works on the project.
func (s *Supervisor) anySlotBusy(project string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.busy {
		if strings.HasPrefix(id, project+"/") {
			return true
		}
	}
	return false
}

func (s *Supervisor) doneSnapshot() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.done)
}

// reconcileProject plans one project from what the pass observed. seen is the
// count of finished actions per slot when the pass began to observe.
func (s *Supervisor) reconcileProject(ctx context.Context, p *spec.Project, cs []runtime.Container,
	health map[string]reconcile.Health, seen map[string]uint64) time.Time {
	hist, err := s.cfg.Store.History(p.Name)
	if err != nil {
		s.cfg.Log.Error("read slot memory", "project", p.Name, "err", err)
		return time.Time{}
	}
	now := s.cfg.Clock.Now()
	s.noteReadiness(p, cs)
	iso := s.isolate(ctx, p, cs, hist, health, now, seen) // quarantine.go
	ro := s.rollouts(p, cs, health, now)                  // rollout.go
	obs := reconcile.Observed{Containers: cs, History: hist, Health: health, Specs: ro.specs(), EngineDown: s.engineDown()}
	if pl := s.cfg.Placement; pl != nil {
		obs.Placed, obs.Node = pl.Placed(p.Name), pl.Node()
		if obs.Placed == nil {
			obs.Placed = map[reconcile.SlotKey]string{} // nothing placed yet: nothing runs here
		}
	}
	plan := reconcile.Plan(p, obs, now)
	iso.filter(&plan, now)
	ro.apply(&plan)
	s.hold(ctx, p, cs, iso, &plan)

	// A slot with an action under way, or one that finished since this pass
	// observed, is left alone: the batch pokes the loop when done, and the
	// next pass sees its result.
	s.mu.Lock()
	stale := func(id string) bool { return s.busy[id] || s.done[id] != seen[id] }
	var actions []reconcile.Action
	for _, a := range plan.Actions {
		if !stale(slotID(p.Name, a.Service, a.Slot)) {
			actions = append(actions, a)
		}
	}
	for k := range plan.History {
		if stale(slotID(p.Name, k.Service, k.Slot)) {
			delete(plan.History, k)
		}
	}
	for _, a := range actions {
		s.busy[slotID(p.Name, a.Service, a.Slot)] = true
	}
	s.waits[p.Name] = plan.Waits
	s.mu.Unlock()

	// The memory goes to disk before the actions, so an attempt counts even if tend dies during it.
	t := s.cfg.Clock.Now()
	if err := s.cfg.Store.PutHistory(p.Name, plan.History); err != nil && !store.Full(err) {
		s.cfg.Log.Error("write slot memory", "project", p.Name, "err", err)
		s.release(p.Name, actions)
		return now.Add(time.Second)
	} else if err != nil {
		// A full disk must not stop the healing: the actions run, and the
		// memory is written by the next pass that finds space (a tend that
		// dies meanwhile forgets these attempts, which is the lesser harm).
		s.cfg.Log.Error("write slot memory; acting without it while the disk is full", "project", p.Name, "err", err)
	}
	s.cfg.Log.Debug("planned", "project", p.Name, "actions", len(actions), "history_write", s.cfg.Clock.Now().Sub(t))
	if len(actions) > 0 {
		s.work.Add(1)
		go s.runBatch(context.WithoutCancel(ctx), p, actions)
	}
	return earliest(plan.Wake, iso.wake)
}

func (s *Supervisor) release(project string, actions []reconcile.Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range actions {
		id := slotID(project, a.Service, a.Slot)
		delete(s.busy, id)
		s.done[id]++
	}
}

// runBatch carries out one plan's actions: removals first, so names and ports
// are free, then the rest, each bounded by Parallel.
func (s *Supervisor) runBatch(ctx context.Context, p *spec.Project, actions []reconcile.Action) {
	defer s.work.Done()
	defer s.Poke()
	defer s.release(p.Name, actions)
	var removals, rest []reconcile.Action
	for _, a := range actions {
		if a.Kind == reconcile.Remove {
			removals = append(removals, a)
		} else {
			rest = append(rest, a)
		}
	}
	if needsNetwork(rest) {
		if err := s.ensureResources(ctx, p); err != nil {
			for _, a := range rest {
				s.finish(p.Name, a, "", err)
			}
			return
		}
	}
	for _, group := range [][]reconcile.Action{removals, rest} {
		g := errgroup.Group{}
		g.SetLimit(s.cfg.Parallel)
		for _, a := range group {
			g.Go(func() error {
				t := s.cfg.Clock.Now()
				id, err := s.execute(ctx, p, a)
				s.cfg.Log.Debug("executed", "action", a.Kind, "service", a.Service, "slot", a.Slot, "took", s.cfg.Clock.Now().Sub(t))
				s.finish(p.Name, a, id, err)
				if a.Kind == reconcile.Takeover && err == nil && a.Reason != rollout.ReasonRollout {
					s.startDependents(p.Name, a.Service, fmt.Sprintf("%s/%d was replaced", a.Service, a.Slot), false)
				}
				return nil
			})
		}
		g.Wait()
	}
}

// finish records what came of an action: the slot's memory learns the
// container made or the failure (which paces the next try), then the journal.
func (s *Supervisor) finish(project string, a reconcile.Action, id string, err error) {
	k := reconcile.SlotKey{Service: a.Service, Slot: a.Slot}
	if hs, herr := s.cfg.Store.History(project); herr != nil {
		s.cfg.Log.Error("read slot memory", "project", project, "err", herr)
	} else if h := reconcile.Outcome(hs[k], id, paced(err), s.cfg.Clock.Now()); !h.Equal(hs[k]) {
		if herr := s.cfg.Store.PutHistory(project, map[reconcile.SlotKey]reconcile.History{k: h}); herr != nil {
			s.cfg.Log.Error("write slot memory", "project", project, "err", herr)
		}
	}
	if vanished(a, err) {
		s.cfg.Log.Info("not done: the container was removed under it", "project", project, "action", a.Kind,
			"service", a.Service, "slot", a.Slot, "err", err)
		return
	}
	if a.Reason != "" {
		s.journal(s.entry(project, a, err))
	}
}

// vanished tells a restart whose container was removed under it (`docker rm
// -f` kills first, and the die asks for a restart): nothing was done, so
// nothing is journaled; the create that follows says what happened.
func vanished(a reconcile.Action, err error) bool {
	return a.Kind == reconcile.Restart && errs.KindOf(err) == errs.NotFound
}

// paced is the error the slot should wait a backoff for: a container that
// vanished under the action is no reason to wait, the next pass sees it gone.
func paced(err error) error {
	if errs.KindOf(err) == errs.NotFound {
		return nil
	}
	return err
}

func needsNetwork(actions []reconcile.Action) bool {
	for _, a := range actions {
		if a.Kind == reconcile.Create || a.Kind == reconcile.Replace || a.Kind == reconcile.Surge {
			return true
		}
	}
	return false
}

func (s *Supervisor) ensureResources(ctx context.Context, p *spec.Project) error {
	for _, n := range p.Networks {
		if err := s.cfg.Runtime.EnsureNetwork(ctx, p.Name, n); err != nil {
			return err
		}
	}
	for _, v := range p.Volumes {
		if err := s.cfg.Runtime.EnsureVolume(ctx, p.Name, v); err != nil {
			return err
		}
	}
	return nil
}

// execute carries out one action and returns the container it created, if any.
func (s *Supervisor) execute(ctx context.Context, p *spec.Project, a reconcile.Action) (string, error) {
	rt := s.cfg.Runtime
	svc, _ := p.Service(a.Service)
	switch a.Kind {
	case reconcile.Create:
		return s.create(ctx, p, svc, a.Slot, runtime.ReplicaName(p.Name, svc, a.Slot))
	case reconcile.Surge:
		return s.create(ctx, p, svc, a.Slot, runtime.SurgeName(p.Name, svc, a.Slot))
	case reconcile.Takeover:
		if a.Container != "" {
			if err := s.stopAndRemove(ctx, a.Container, svc); err != nil {
				return "", err
			}
		}
		return a.Surge, rt.Rename(ctx, a.Surge, runtime.ReplicaName(p.Name, svc, a.Slot))
	case reconcile.Start, reconcile.Restart:
		return "", rt.Start(ctx, a.Container)
	case reconcile.Replace:
		if err := s.stopAndRemove(ctx, a.Container, svc); err != nil {
			return "", err
		}
		return s.create(ctx, p, svc, a.Slot, runtime.ReplicaName(p.Name, svc, a.Slot))
	case reconcile.Remove:
		return "", s.stopAndRemove(ctx, a.Container, svc)
	case reconcile.Settle:
		return "", rt.Release(ctx, a.Container) // a held exit ends as exited
	case reconcile.Unpause:
		return "", rt.Unpause(ctx, a.Container)
	}
	return "", nil
}

func (s *Supervisor) create(ctx context.Context, p *spec.Project, svc *spec.Service, slot int, name string) (string, error) {
	published := routes(p, nil, nil)
	hosts := inStackHosts(p, svc, inStackTargets(p, s.gatewaysOf(ctx, p), published))
	id, err := s.cfg.Runtime.Create(ctx, p, svc, runtime.Replica{Slot: slot, Name: name, Hosts: hosts})
	if err != nil {
		if id != "" {
			_ = s.cfg.Runtime.Remove(ctx, id) // half made: the next pass makes it again
		}
		return "", err
	}
	return id, s.cfg.Runtime.Start(ctx, id)
}

// stopAndRemove stops a container gracefully (its service's stop grace, or the
// engine's 10s when it has no service any more) and removes it, keeping its
// volumes. A replica the proxy found hung is killed at once: it answers
// nothing and a frozen process takes no signal but KILL, so a grace only
// held the slot (bench/chaos, 2026-12-08 00:08 UTC: 10 s in which a second
// hang of the service waited for its replacement).
func (s *Supervisor) stopAndRemove(ctx context.Context, id string, svc *spec.Service) error {
	s.drainFor(ctx, id, svc)
	g := grace(svc)
	if s.isHung(id) {
		g = 0
	}
	if err := s.cfg.Runtime.Stop(ctx, id, g); err != nil {
		return err
	}
	return s.cfg.Runtime.Remove(ctx, id)
}

// entry is the journal record of a carried-out action.
func (s *Supervisor) entry(project string, a reconcile.Action, err error) store.Entry {
	action := string(a.Kind)
	switch a.Reason {
	case reconcile.ReasonCompleted:
		action = "completed"
	case reconcile.ReasonMaxAttempts:
		action = "gave-up"
	}
	if a.Kind == reconcile.Surge {
		action = "replace" // what a person greps for; the takeover that ends it follows
	}
	e := store.Entry{Project: project, Service: a.Service, Slot: a.Slot, Container: short(a.Container),
		Action: action, Reason: string(a.Reason), Message: a.Message}
	if err != nil {
		e.Error = err.Error()
	}
	return e
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// startTeardown removes a project marked for deletion in the background.
func (s *Supervisor) startTeardown(ctx context.Context, name string) {
	s.mu.Lock()
	s.busy[name] = true
	s.mu.Unlock()
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		defer s.Poke()
		defer func() {
			s.mu.Lock()
			delete(s.busy, name)
			delete(s.waits, name)
			s.mu.Unlock()
		}()
		s.teardown(context.WithoutCancel(ctx), name)
	}()
}

// teardown reads the record and the containers afresh: the pass that started
// it may have looked before the project was brought up again.
func (s *Supervisor) teardown(ctx context.Context, name string) {
	rec, err := s.cfg.Store.Project(name)
	if err != nil || !rec.Deleting {
		return
	}
	cs, err := s.cfg.Runtime.List(ctx, name)
	if err != nil {
		s.cfg.Log.Warn("observe containers for down", "project", name, "err", err)
		return
	}
	p := &rec.Project
	g := errgroup.Group{}
	g.SetLimit(s.cfg.Parallel)
	for _, c := range cs {
		g.Go(func() error {
			svc, _ := p.Service(c.Service)
			return s.stopAndRemove(ctx, c.ID, svc)
		})
	}
	err = g.Wait()
	for _, n := range p.Networks {
		if err == nil {
			err = s.cfg.Runtime.RemoveNetwork(ctx, n)
		}
	}
	for _, v := range p.Volumes {
		if err == nil && rec.Volumes {
			err = s.cfg.Runtime.RemoveVolume(ctx, v)
		}
	}
	msg := fmt.Sprintf("removed %d containers and %d networks", len(cs), len(p.Networks))
	if rec.Volumes {
		msg += fmt.Sprintf(" and %d volumes", len(p.Volumes))
	} else if len(p.Volumes) > 0 {
		msg += fmt.Sprintf("; kept %d volumes", len(p.Volumes))
	}
	e := store.Entry{Project: p.Name, Action: "down", Reason: "requested", Message: msg}
	if err != nil {
		e.Error = err.Error()
		s.journal(e)
		s.teardownFailed(p.Name)
		return // still marked deleting: a later pass tries again
	}
	s.mu.Lock()
	delete(s.downs, p.Name)
	for _, n := range p.Networks {
		delete(s.gateways, n.Name) // a network made again may get another subnet
	}
	s.mu.Unlock()
	s.journal(e)
	if err := s.cfg.Store.DeleteProject(p.Name); err != nil {
		s.cfg.Log.Error("forget project", "project", p.Name, "err", err)
	}
	s.forgetCounts(p.Name)
}

// drainFor drains a replica for at most its stop grace period.
func (s *Supervisor) drainFor(ctx context.Context, id string, svc *spec.Service) {
	dctx, cancel := context.WithTimeout(ctx, grace(svc))
	defer cancel()
	s.drain(dctx, id)
}

// grace is how long a replica of svc gets to stop: its stop_grace_period, or
// the engine's 10s (also when it has no service any more).
func grace(svc *spec.Service) time.Duration {
	if svc != nil && svc.StopGracePeriod > 0 {
		return svc.StopGracePeriod
	}
	return 10 * time.Second
}
