package supervisor

import (
	"context"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/spec"
)

// checkImageHealthchecks finds, once the images are known, a service_healthy
// dependency on a service that has no health check at all: none in its compose
// file and none in its image. The loader cannot tell (it knows no images); the
// engine reports the health of an image's HEALTHCHECK like a file's. An image the
// engine does not have yet is not judged here.
func (s *Supervisor) checkImageHealthchecks(ctx context.Context, p *spec.Project) error {
	for _, svc := range p.Services {
		for _, d := range svc.DependsOn {
			dep, ok := p.Service(d.Service)
			if d.Condition != spec.ServiceHealthy || !ok || dep.Healthcheck != nil {
				continue
			}
			has, found, err := s.cfg.Runtime.ImageHealthcheck(ctx, dep.Image)
			if err != nil {
				return err
			}
			if found && !has {
				return errs.E(errs.Invalid, "service %q: depends_on: condition service_healthy needs a health check on service %q, but neither its compose file nor its image %s has one; add a healthcheck to %s", svc.Name, dep.Name, dep.Image, dep.Name)
			}
		}
	}
	return nil
}
