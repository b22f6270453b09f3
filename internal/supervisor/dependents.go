package supervisor

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// startDependents restarts, in the background, the services that depend on
// service (see reconcile.Dependents), one service after the other in
// dependency order, each one's replicas together.
func (s *Supervisor) startDependents(project, service, why string, direct bool) {
	rec, err := s.cfg.Store.Project(project)
	if err != nil || rec.Deleting {
		return
	}
	order := reconcile.Dependents(&rec.Project, service, direct)
	if len(order) == 0 {
		return
	}
	s.journal(store.Entry{Project: project, Service: service, Action: "restart-dependents", Reason: string(reconcile.ReasonDependency),
		Message: fmt.Sprintf("%s; restarting its dependents in order: %s", why, strings.Join(order, ", "))})
	s.mu.Lock()
	ctx := context.WithoutCancel(s.ctx)
	s.mu.Unlock()
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		defer s.Poke()
		for _, name := range order {
			s.restartService(ctx, &rec.Project, name, reconcile.ReasonDependency,
				fmt.Sprintf("%s; %s depends on it with restart: true", why, name), s.cfg.Parallel)
		}
	}()
}

// restartService stops and starts every running replica of a service,
// parallel at a time, and returns once they run again, with how many it
// restarted. A slot with an action under way is skipped: it is being made
// anew anyway.
func (s *Supervisor) restartService(ctx context.Context, p *spec.Project, service string, reason reconcile.Reason, msg string, parallel int) int {
	svc, ok := p.Service(service)
	if !ok {
		return 0
	}
	cs, err := s.cfg.Runtime.List(ctx, p.Name)
	if err != nil {
		s.cfg.Log.Warn("observe containers to restart", "project", p.Name, "service", service, "err", err)
		return 0
	}
	var acts []reconcile.Action
	s.mu.Lock()
	for _, c := range cs {
		id := slotID(p.Name, c.Service, c.Slot)
		if c.Service != service || c.State != runtime.Running || c.Name != runtime.ReplicaName(p.Name, svc, c.Slot) || s.busy[id] {
			continue
		}
		s.busy[id] = true
		acts = append(acts, reconcile.Action{Kind: reconcile.Restart, Service: c.Service, Slot: c.Slot, Container: c.ID,
			Reason: reason, Message: msg})
	}
	s.mu.Unlock()
	defer s.release(p.Name, acts)
	g := errgroup.Group{}
	g.SetLimit(max(parallel, 1))
	for _, a := range acts {
		g.Go(func() error {
			err := s.restartContainer(ctx, a.Container, svc)
			s.journal(s.entry(p.Name, a, err))
			return nil
		})
	}
	g.Wait()
	return len(acts)
}

// restartContainer stops a container gracefully and starts it again: the
// same container, its volumes kept.
//
// It is not drained first: the proxy would keep a drained replica out of
// rotation for as long as the container exists, and this one stays.
func (s *Supervisor) restartContainer(ctx context.Context, id string, svc *spec.Service) error {
	if err := s.cfg.Runtime.Stop(ctx, id, grace(svc)); err != nil {
		return err
	}
	return s.cfg.Runtime.Start(ctx, id)
}
