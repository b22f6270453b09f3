package spec

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
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
	checks := []func(*Project, *Service) *Error{checkContainerName, checkRestart, checkPorts, checkMounts, checkAttachments, checkHealthcheck, checkDependencies, checkBackoff, checkProbes, checkLogRules, checkBuild, checkOptions, checkAutoscale, checkRollout}
	for _, check := range checks {
		if err := check(p, s); err != nil {
			return err
		}
	}
	return nil
}

// checkContainerName: a fixed name fits one container, as compose says too; tend's
// start-first replacement briefly runs NAME-next beside it.
func checkContainerName(p *Project, s *Service) *Error {
	if s.ContainerName == "" {
		return nil
	}
	if !containerNameRE.MatchString(s.ContainerName) {
		return errorf(s.Name, "container_name", "%q is not a valid container name (want letters, digits, _ . -, starting with a letter or digit)", s.ContainerName)
	}
	if s.Replicas > 1 {
		return errorf(s.Name, "container_name", "%q names one container, but the service has %d replicas; remove container_name or run one replica", s.ContainerName, s.Replicas)
	}
	if a := s.Tend.Autoscale; a != nil && a.Max > 1 {
		return errorf(s.Name, "container_name", "%q names one container, but x-tend.autoscale may run %d; remove one of the two", s.ContainerName, a.Max)
	}
	for i := range p.Services {
		if o := &p.Services[i]; o.Name != s.Name && o.ContainerName == s.ContainerName {
			return errorf(s.Name, "container_name", "%q is also the container_name of service %q", s.ContainerName, o.Name)
		}
	}
	return nil
}

// containerNameRE is the engine's rule for container names.
var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

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
		if port.Protocol != "tcp" && port.Protocol != "udp" && port.Protocol != "sctp" {
			return errorf(s.Name, "ports", "protocol %q is not supported (want tcp, udp or sctp)", port.Protocol)
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
		case m.SELinux != "" && (m.Type != MountBind || (m.SELinux != "z" && m.SELinux != "Z")):
			return errorf(s.Name, "volumes", "selinux %q at %s: want z or Z, on a bind mount", m.SELinux, m.Target)
		}
	}
	return nil
}

// checkAttachments requires at least one network: tend never falls back to the
// engine's default bridge, which some hosts lack.
func checkAttachments(p *Project, s *Service) *Error {
	if s.NetworkMode != "" {
		return checkNetworkMode(p, s)
	}
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
		if err := checkFixedAddresses(p, s, a); err != nil {
			return err
		}
	}
	return nil
}

// checkFixedAddresses: a fixed address fits one container, and the engine gives
// one only on a network whose subnet the file configures.
func checkFixedAddresses(p *Project, s *Service, a NetworkAttach) *Error {
	for _, addr := range []string{a.IPv4Address, a.IPv6Address} {
		if addr == "" {
			continue
		}
		key := "networks." + a.Network
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return errorf(s.Name, key, "%q is not an IP address", addr)
		}
		if s.Replicas > 1 {
			return errorf(s.Name, key, "the fixed address %s fits one container, but the service has %d replicas", addr, s.Replicas)
		}
		n := p.Network(a.Network)
		if n == nil || n.External {
			continue // the engine knows an external network's subnets
		}
		if !slices.ContainsFunc(ipamPools(n), func(pool IPAMPool) bool {
			prefix, err := netip.ParsePrefix(pool.Subnet)
			return err == nil && prefix.Contains(ip)
		}) {
			return errorf(s.Name, key, "the fixed address %s is in no subnet of network %q; give the network one under ipam.config", addr, a.Network)
		}
	}
	return nil
}

func ipamPools(n *Network) []IPAMPool {
	if n.IPAM == nil {
		return nil
	}
	return n.IPAM.Pools
}

// checkNetworkMode: a service in another network mode joins none of tend's
// networks and publishes nothing through tend's proxy (the engine refuses port
// publishing in another container's network, and on the host's the container
// binds its ports itself).
func checkNetworkMode(p *Project, s *Service) *Error {
	mode := s.NetworkMode
	kind, target, _ := strings.Cut(mode, ":")
	switch {
	case len(s.Networks) > 0:
		return errorf(s.Name, "network_mode", "%q cannot be combined with networks", mode)
	case mode == "host" || mode == "none":
	case kind == "service" && target != "":
		t, ok := p.Service(target)
		switch {
		case !ok:
			return errorf(s.Name, "network_mode", "service %q is not in the project", target)
		case t.Name == s.Name:
			return errorf(s.Name, "network_mode", "a service cannot share its own network")
		case t.NetworkMode != "" && t.NetworkMode != "host":
			return errorf(s.Name, "network_mode", "service %q has network_mode %q itself; share the network of a service on tend's networks or the host's", target, t.NetworkMode)
		}
	case kind == "container" && target != "":
	default:
		return errorf(s.Name, "network_mode", "%q is not one of host, none, service:NAME, container:NAME", mode)
	}
	if len(s.Ports) > 0 {
		return errorf(s.Name, "ports", "a service with network_mode %q publishes no ports (its ports are those of the network it shares); remove ports", mode)
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
			// Without a healthcheck in the file, the image's HEALTHCHECK counts;
			// that is checked once the image is known (supervisor.Up), as compose does.
			if dep.Healthcheck != nil && dep.Healthcheck.Disable {
				return errorf(s.Name, "depends_on", "condition service_healthy needs a health check on service %q, whose healthcheck is disabled", d.Service)
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
