package reconcile

import (
	"fmt"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// depsReady tells whether every dependency of svc meets its depends_on
// condition, and if not, which one is waited for.
func depsReady(p *spec.Project, svc *spec.Service, byService map[string][]runtime.Container) (bool, string) {
	for _, d := range svc.DependsOn {
		dep, ok := p.Service(d.Service)
		if !ok || dep.Replicas == 0 {
			continue // an absent optional dependency, or one scaled to zero, has nothing to wait for
		}
		if ok, why := depReady(d, dep, byService[d.Service]); !ok {
			return false, why
		}
	}
	return true, ""
}

func depReady(d spec.Dependency, dep *spec.Service, cs []runtime.Container) (bool, string) {
	if len(cs) < dep.Replicas {
		return false, fmt.Sprintf("%s to start (%d of %d replicas exist)", d.Service, len(cs), dep.Replicas)
	}
	for _, c := range cs {
		switch d.Condition {
		case spec.ServiceHealthy:
			if c.State != runtime.Running || c.Health != runtime.HealthHealthy {
				return false, fmt.Sprintf("%s to be healthy (%s is %s)", d.Service, c.Name, stateText(c))
			}
		case spec.ServiceCompletedSuccessfully:
			if c.State != runtime.Exited || c.ExitCode != 0 {
				return false, fmt.Sprintf("%s to complete successfully (%s is %s)", d.Service, c.Name, stateText(c))
			}
		default: // service_started
			if c.State == runtime.Created {
				return false, fmt.Sprintf("%s to start (%s is created)", d.Service, c.Name)
			}
		}
	}
	return true, ""
}

func stateText(c runtime.Container) string {
	switch {
	case c.State == runtime.Exited:
		return fmt.Sprintf("exited with code %d", c.ExitCode)
	case c.Health != runtime.HealthNone:
		return string(c.State) + ", " + string(c.Health)
	}
	return string(c.State)
}
