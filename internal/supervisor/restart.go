package supervisor

import (
	"context"
	"fmt"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/reconcile"
)

// Restart restarts a service's running replicas by hand (the dashboard's
// restart button), one after the other so the others keep serving, and
// returns once they run again. Each restart is journaled with reason
// by-hand; none counts against the restart budget.
func (s *Supervisor) Restart(ctx context.Context, project, service string) (string, error) {
	rec, err := s.cfg.Store.Project(project)
	if err != nil {
		return "", err
	}
	if rec.Deleting {
		return "", errs.E(errs.Conflict, "project %s is being taken down", project)
	}
	if _, ok := rec.Project.Service(service); !ok {
		return "", errs.E(errs.NotFound, "project %s has no service %q", project, service)
	}
	defer s.Poke()
	n := s.restartService(ctx, &rec.Project, service, reconcile.ReasonByHand, "restarted by hand", 1)
	if n == 0 {
		return "", errs.E(errs.Conflict, "service %s has no running replica to restart (tend restarts failed ones by itself; tend heal lifts a quarantine)", service)
	}
	return fmt.Sprintf("restarted %d replica(s) of %s, one after the other", n, service), nil
}
