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

// Dependents lists the services to restart when service was replaced, in the
// order to restart them (each after the services it depends on): those that
// declare depends_on {service: {restart: true}}, then theirs in turn. With
// direct, every service that depends on service at all starts the list.
func Dependents(p *spec.Project, service string, direct bool) []string {
	in := map[string]bool{}
	var grow func(name string, first bool)
	grow = func(name string, first bool) {
		for _, s := range p.Services {
			for _, d := range s.DependsOn {
				if d.Service == name && (d.Restart || first) && !in[s.Name] && s.Name != service {
					in[s.Name] = true
					grow(s.Name, false)
				}
			}
		}
	}
	grow(service, direct)
	// Kahn's order over the chosen services, by name among equals.
	var order []string
	placed := map[string]bool{}
	for len(order) < len(in) {
		progress := false
		for _, s := range p.Services { // sorted by name
			if !in[s.Name] || placed[s.Name] {
				continue
			}
			ready := true
			for _, d := range s.DependsOn {
				if in[d.Service] && !placed[d.Service] {
					ready = false
				}
			}
			if ready {
				order = append(order, s.Name)
				placed[s.Name] = true
				progress = true
				break // restart from the first name: order stays deterministic
			}
		}
		if !progress {
			break // a cycle, which Validate rules out
		}
	}
	return order
}
