package spec

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Validate checks that p is complete and consistent: what Load guarantees, checked
// again for a Project that arrived as JSON. It returns the first problem as an *Error
// whose keys are compose's, since that is the language of whoever wrote the stack.
func Validate(p *Project) error {
	if p == nil {
		return &Error{Message: "no project"}
	}
	if !ValidProjectName(p.Name) {
		return &Error{Key: "name", Message: fmt.Sprintf("invalid project name %q: want lowercase letters, digits, dashes and underscores, starting with a letter or digit", p.Name)}
	}
	checks := []func(*Project) *Error{checkNetworks, checkVolumes, checkServices, checkPublished, checkCycles}
	for _, check := range checks {
		if err := check(p); err != nil {
			return err
		}
	}
	return nil
}

func checkNetworks(p *Project) *Error {
	for i, n := range p.Networks {
		if err := checkResource("networks", i, n.Key, n.Name, func(j int) string { return p.Networks[j].Key }); err != nil {
			return err
		}
	}
	return nil
}

func checkVolumes(p *Project) *Error {
	for i, v := range p.Volumes {
		if err := checkResource("volumes", i, v.Key, v.Name, func(j int) string { return p.Volumes[j].Key }); err != nil {
			return err
		}
	}
	return nil
}

// checkResource checks the i-th network or volume: named, and keyed in strictly
// increasing order, which rules out duplicates too.
func checkResource(kind string, i int, key, name string, keyAt func(int) string) *Error {
	switch {
	case key == "":
		return &Error{Key: kind, Message: fmt.Sprintf("entry %d has no key", i)}
	case name == "":
		return &Error{Key: kind + "." + key, Message: "engine name is empty"}
	case i > 0 && keyAt(i-1) >= key:
		return &Error{Key: kind + "." + key, Message: "duplicate or out of order (want sorted by key)"}
	}
	return nil
}

func checkServices(p *Project) *Error {
	for i := range p.Services {
		s := &p.Services[i]
		if !validServiceName(s.Name) {
			return &Error{Key: "services", Message: fmt.Sprintf("invalid service name %q: want letters, digits, dots, dashes and underscores", s.Name)}
		}
		if i > 0 && p.Services[i-1].Name >= s.Name {
			return &Error{Service: s.Name, Message: "duplicate or out of order (want services sorted by name)"}
		}
		if err := checkService(p, s); err != nil {
			return err
		}
	}
	return nil
}

func checkService(p *Project, s *Service) *Error {
	if s.Image == "" {
		return errorf(s.Name, "image", "required")
	}
	if s.Replicas < 0 {
		return errorf(s.Name, "deploy.replicas", "must be 0 or more (got %d)", s.Replicas)
	}
	if s.StopGracePeriod < 0 {
		return errorf(s.Name, "stop_grace_period", "must not be negative (got %s)", s.StopGracePeriod)
	}
	checks := []func(*Project, *Service) *Error{checkRestart, checkPorts, checkMounts, checkAttachments, checkHealthcheck, checkDependencies, checkBackoff, checkProbes, checkLogRules, checkBuild, checkOptions}
	for _, check := range checks {
		if err := check(p, s); err != nil {
			return err
		}
	}
	return nil
}

func checkRestart(_ *Project, s *Service) *Error {
	r := s.Restart
	switch r.Condition {
	case RestartAny, RestartOnFailure, RestartNone:
	default:
		return errorf(s.Name, "deploy.restart_policy.condition", "must be one of any, on-failure, none (got %q)", r.Condition)
	}
	switch {
	case r.Delay < 0:
		return errorf(s.Name, "deploy.restart_policy.delay", "must not be negative (got %s)", r.Delay)
	case r.Window < 0:
		return errorf(s.Name, "deploy.restart_policy.window", "must not be negative (got %s)", r.Window)
	case r.MaxAttempts < 0:
		return errorf(s.Name, "deploy.restart_policy.max_attempts", "must be 0 or more (got %d)", r.MaxAttempts)
	}
	return nil
}

func checkPorts(_ *Project, s *Service) *Error {
	for _, port := range s.Ports {
		if port.ContainerPort == 0 {
			return errorf(s.Name, "ports", "container port 0 is out of range 1-65535")
		}
		if port.Protocol != "tcp" && port.Protocol != "udp" {
			return errorf(s.Name, "ports", "protocol %q is not supported by tend (want tcp or udp)", port.Protocol)
		}
	}
	return nil
}

func checkMounts(p *Project, s *Service) *Error {
	targets := map[string]bool{}
	for _, m := range s.Mounts {
		if !path.IsAbs(m.Target) {
			return errorf(s.Name, "volumes", "mount target %q is not an absolute path", m.Target)
		}
		if targets[m.Target] {
			return errorf(s.Name, "volumes", "two mounts at %s", m.Target)
		}
		targets[m.Target] = true
		switch {
		case m.Type == MountVolume && m.Source != "" && !hasVolume(p, m.Source):
			return errorf(s.Name, "volumes", "volume %q is not declared under top-level volumes", m.Source)
		case m.Type == MountBind && !path.IsAbs(m.Source):
			return errorf(s.Name, "volumes", "bind source %q is not an absolute path", m.Source)
		case m.Type != MountVolume && m.Type != MountBind:
			return errorf(s.Name, "volumes", "mount type %q is not supported by tend (want volume or bind)", m.Type)
		}
	}
	return nil
}

// checkAttachments requires at least one network: tend never falls back to the
// engine's default bridge, which some hosts lack.
func checkAttachments(p *Project, s *Service) *Error {
	if len(s.Networks) == 0 {
		return errorf(s.Name, "networks", "a service must join at least one network")
	}
	seen := map[string]bool{}
	for _, a := range s.Networks {
		if !hasNetwork(p, a.Network) {
			return errorf(s.Name, "networks", "network %q is not declared under top-level networks", a.Network)
		}
		if seen[a.Network] {
			return errorf(s.Name, "networks", "network %q joined twice", a.Network)
		}
		seen[a.Network] = true
	}
	return nil
}

func checkHealthcheck(_ *Project, s *Service) *Error {
	h := s.Healthcheck
	if h == nil || h.Disable {
		return nil
	}
	if len(h.Test) > 0 {
		if h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL" {
			return errorf(s.Name, "healthcheck.test", "must start with CMD, CMD-SHELL or NONE (got %q)", h.Test[0])
		}
		if len(h.Test) < 2 {
			return errorf(s.Name, "healthcheck.test", "%s needs a command", h.Test[0])
		}
	}
	if h.Interval < 0 || h.Timeout < 0 || h.StartPeriod < 0 || h.Retries < 0 {
		return errorf(s.Name, "healthcheck", "interval, timeout, start_period and retries must not be negative")
	}
	return nil
}

func checkDependencies(p *Project, s *Service) *Error {
	for i, d := range s.DependsOn {
		dep, ok := p.Service(d.Service)
		switch {
		case !ok:
			return errorf(s.Name, "depends_on", "unknown service %q", d.Service)
		case i > 0 && s.DependsOn[i-1].Service >= d.Service:
			return errorf(s.Name, "depends_on", "service %q listed twice or out of order (want sorted by service)", d.Service)
		}
		switch d.Condition {
		case ServiceStarted, ServiceCompletedSuccessfully:
		case ServiceHealthy:
			if dep.Healthcheck == nil || dep.Healthcheck.Disable {
				return errorf(s.Name, "depends_on", "condition service_healthy needs a healthcheck on service %q", d.Service)
			}
		default:
			return errorf(s.Name, "depends_on", "condition of %q must be one of service_started, service_healthy, service_completed_successfully (got %q)", d.Service, d.Condition)
		}
	}
	return nil
}

func checkBackoff(_ *Project, s *Service) *Error {
	b := s.Tend.Backoff
	const key = ExtensionKey + ".backoff"
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"initial", b.Initial}, {"max", b.Max}, {"reset_after", b.ResetAfter}} {
		if f.d <= 0 {
			return errorf(s.Name, key+"."+f.name, "must be positive (got %s)", f.d)
		}
	}
	if b.Initial > b.Max {
		return errorf(s.Name, key, "initial %s is greater than max %s", b.Initial, b.Max)
	}
	return nil
}

// checkPublished rejects two bindings of one host port: tend's proxy listens on each
// published port once, for all replicas of one service.
func checkPublished(p *Project) *Error {
	type binding struct {
		Port
		service string
	}
	var seen []binding
	for _, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostPort == 0 {
				continue
			}
			for _, b := range seen {
				if sameBinding(b.Port, port) {
					return errorf(s.Name, "ports", "host port %d/%s is already published by service %q", port.HostPort, port.Protocol, b.service)
				}
			}
			seen = append(seen, binding{port, s.Name})
		}
	}
	return nil
}

// sameBinding says whether two ports would bind the same host socket; an unspecified
// host IP binds them all.
func sameBinding(a, b Port) bool {
	anyIP := func(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }
	return a.HostPort == b.HostPort && a.Protocol == b.Protocol &&
		(a.HostIP == b.HostIP || anyIP(a.HostIP) || anyIP(b.HostIP))
}

// checkCycles rejects a dependency cycle, which would leave each service in it waiting
// for the others forever. It walks services and dependencies in name order, so the
// cycle it names is always the same one.
func checkCycles(p *Project) *Error {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string) *Error
	visit = func(name string) *Error {
		state[name] = visiting
		stack = append(stack, name)
		s, _ := p.Service(name)
		for _, d := range s.DependsOn {
			switch state[d.Service] {
			case visiting:
				cycle := append(slices.Clone(stack[slices.Index(stack, d.Service):]), d.Service)
				return errorf(cycle[0], "depends_on", "dependency cycle: %s", strings.Join(cycle, " -> "))
			case unvisited:
				if err := visit(d.Service); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return nil
	}
	for _, s := range p.Services {
		if state[s.Name] == unvisited {
			if err := visit(s.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasVolume(p *Project, key string) bool {
	for _, v := range p.Volumes {
		if v.Key == key {
			return true
		}
	}
	return false
}

func hasNetwork(p *Project, key string) bool {
	for _, n := range p.Networks {
		if n.Key == key {
			return true
		}
	}
	return false
}

// validServiceName applies compose's pattern, [a-zA-Z0-9._-]+.
func validServiceName(name string) bool {
	return name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
}

// ValidProjectName applies compose's rule: lowercase letters, digits, dashes
// and underscores, starting with a letter or digit.
func ValidProjectName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '-' || r == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}
