package compose

import (
	"fmt"
	"github.com/tend-sh/tend/internal/spec"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// defaultNetwork is the network of services that name none, as in compose.
const defaultNetwork = "default"

// convertProject maps compose-go's project onto tend's. Errors are *Error without a
// file; Load adds it.
func convertProject(cp *types.Project) (*spec.Project, []spec.Warning, error) {
	p := &spec.Project{Name: cp.Name}
	warnings := projectWarnings(cp)
	joined := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(cp.Services)) {
		s, w, err := convertService(cp, cp.Services[name])
		if err != nil {
			return nil, nil, err
		}
		for _, n := range s.Networks {
			joined[n.Network] = true
		}
		p.Services = append(p.Services, s)
		warnings = append(warnings, w...)
	}
	warnings = append(warnings, oneShots(cp, p)...)
	p.Networks = convertNetworks(cp, joined)
	p.Volumes = convertVolumes(cp)
	return p, sortWarnings(warnings), nil
}

// oneShots gives the services that others wait on with service_completed_successfully
// (an init or migration job) restart: on-failure where the file sets no restart policy:
// tend's default, restart on any exit, would run a job that completed again and again.
// A failed job is still retried, as tend retries anything that crashes. Where the file
// asks for restarts on any exit, the job runs again after completing: tend keeps that,
// and says so.
func oneShots(cp *types.Project, p *spec.Project) []spec.Warning {
	waitedOn := map[string]string{} // job -> a service that waits for it
	for _, s := range p.Services {
		for _, d := range s.DependsOn {
			if d.Condition == spec.ServiceCompletedSuccessfully {
				waitedOn[d.Service] = s.Name
			}
		}
	}
	var out []spec.Warning
	for i := range p.Services {
		s := &p.Services[i]
		waiter, ok := waitedOn[s.Name]
		if !ok {
			continue
		}
		sc := cp.Services[s.Name]
		explicit := sc.Restart != "" || (sc.Deploy != nil && sc.Deploy.RestartPolicy != nil)
		switch {
		case !explicit:
			s.Restart.Condition = spec.RestartOnFailure
		case s.Restart.Condition == spec.RestartAny:
			out = append(out, spec.Warning{Service: s.Name, Key: "restart", Message: fmt.Sprintf(
				"%s waits for this service to complete (service_completed_successfully), but it restarts on any exit, so it runs again after completing; restart: on-failure runs it once", waiter)})
		}
	}
	return out
}

// convertService maps one service. What runs comes from here; how tend supervises it
// (replicas, restart, dependencies, x-tend) from supervision.
func convertService(cp *types.Project, sc types.ServiceConfig) (spec.Service, []spec.Warning, error) {
	name := sc.Name
	if sc.NetworkMode != "" && len(sc.Networks) > 0 {
		return spec.Service{}, nil, errorf(name, "network_mode", "%q cannot be combined with networks: a container in another network mode joins no network of its own; keep one of the two", sc.NetworkMode)
	}
	var warnings []spec.Warning
	if sc.NetworkMode == "bridge" || sc.NetworkMode == "default" {
		// The engine's default bridge: tend never relies on it (some hosts have no
		// docker0). The project's default network gives what such a service uses,
		// the way out and the ports published, and in-stack names besides.
		warnings = append(warnings, spec.Warning{Service: name, Key: "network_mode", Message: fmt.Sprintf("%q: the service joins the project's default network instead (tend never uses the engine's default bridge)", sc.NetworkMode)})
		sc.NetworkMode = ""
	}
	sc.NetworkMode = stackContainer(cp, sc)
	image, build, err := imageAndBuild(cp, sc) // build.go
	if err != nil {
		return spec.Service{}, nil, err
	}
	s := spec.Service{
		Name:          name,
		ContainerName: sc.ContainerName,
		Image:         image,
		Build:         build,
		Command:       execForm(sc.Command),
		Entrypoint:    execForm(sc.Entrypoint),
		Environment:   environment(sc.Environment),
		Labels:        nonEmpty(sc.Labels),
		Networks:      networkAttachments(sc.Networks),
		NetworkMode:   sc.NetworkMode,
		Healthcheck:   healthcheck(sc.HealthCheck),
		StopSignal:    sc.StopSignal,
	}
	if sc.StopGracePeriod != nil {
		s.StopGracePeriod = time.Duration(*sc.StopGracePeriod)
	}
	if s.Ports, err = convertPorts(name, sc.Ports); err != nil {
		return spec.Service{}, nil, err
	}
	if s.NetworkMode != "" {
		s.Networks = nil
		if s.NetworkMode == "host" && len(s.Ports) > 0 {
			// the engine discards them too: the container binds the host's ports itself
			warnings = append(warnings, spec.Warning{Service: name, Key: "ports", Message: "ignored with network_mode: host (the container listens on the host's ports itself; tend's proxy does not front them)"})
			s.Ports = nil
		}
	}
	if s.Mounts, err = convertMounts(name, sc.Volumes, cp.WorkingDir); err != nil {
		return spec.Service{}, nil, err
	}
	if s.Options, err = convertOptions(cp, sc); err != nil {
		return spec.Service{}, nil, err
	}
	if err := supervision(cp, sc, &s); err != nil {
		return spec.Service{}, nil, err
	}
	return s, append(warnings, serviceWarnings(sc)...), nil
}

// stackContainer is sc's network_mode, with container:NAME made service:SERVICE
// where NAME is the container_name of one of the project's services: the same
// network, and tend then moves sc's replica along when that container is replaced.
func stackContainer(cp *types.Project, sc types.ServiceConfig) string {
	target, ok := strings.CutPrefix(sc.NetworkMode, "container:")
	if !ok {
		return sc.NetworkMode
	}
	for _, o := range cp.Services {
		if o.ContainerName == target && o.Name != sc.Name {
			return "service:" + o.Name
		}
	}
	return sc.NetworkMode
}

// supervision fills in the fields that tell tend how to keep s running.
func supervision(cp *types.Project, sc types.ServiceConfig, s *spec.Service) error {
	var err error
	if s.Replicas, err = replicas(sc); err != nil {
		return err
	}
	if s.Restart, err = restartPolicy(sc); err != nil {
		return err
	}
	if s.DependsOn, err = dependencies(cp, sc); err != nil {
		return err
	}
	s.Rollout = rollout(sc) // rollout.go
	if owner, ok := strings.CutPrefix(sc.NetworkMode, "service:"); ok {
		// compose-go adds this dependency with restart: true; tend restarts or
		// replaces a replica whose shared network went away on its own (reconcile).
		found := false
		for i := range s.DependsOn {
			if s.DependsOn[i].Service == owner {
				s.DependsOn[i].Restart, found = false, true
			}
		}
		if !found { // container:NAME made service:OWNER by stackContainer
			s.DependsOn = append(s.DependsOn, spec.Dependency{Service: owner, Condition: spec.ServiceStarted, Required: true})
		}
	}
	if s.Tend, err = parseExtension(sc.Name, sc.Extensions[spec.ExtensionKey]); err != nil {
		return err
	}
	s.Tend.Autoscale, err = parseAutoscale(sc.Name, sc.Extensions[spec.ExtensionKey], s.Replicas) // autoscale.go
	return err
}

// execForm keeps compose's distinction between unset (nil: the image's own) and an
// explicit empty list (clear the image's).
func execForm(c types.ShellCommand) []string {
	if c == nil {
		return nil
	}
	return append([]string{}, c...)
}

// environment keeps the variables that have a value. compose-go has already merged
// env_file under environment and looked up bare names (`- FOO`) in the load's
// environment; a name it could not find stays unset in the container, as in compose.
func environment(m types.MappingWithEquals) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func nonEmpty[M ~map[string]string](m M) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(map[string]string(m))
}

// networkAttachments sorts a service's networks by key. compose-go gives a service
// without networks the default one; one with network_mode (not honoured) has none
// and joins the default network too, as tend never uses the engine's bridge.
func networkAttachments(in map[string]*types.ServiceNetworkConfig) []spec.NetworkAttach {
	if len(in) == 0 {
		return []spec.NetworkAttach{{Network: defaultNetwork}}
	}
	var out []spec.NetworkAttach
	for _, key := range slices.Sorted(maps.Keys(in)) {
		a := spec.NetworkAttach{Network: key}
		if cfg := in[key]; cfg != nil {
			if len(cfg.Aliases) > 0 {
				a.Aliases = slices.Clone(cfg.Aliases)
			}
			a.IPv4Address, a.IPv6Address = cfg.Ipv4Address, cfg.Ipv6Address
		}
		out = append(out, a)
	}
	return out
}

// healthcheck maps compose's healthcheck. A bare string test is already
// ["CMD-SHELL", test] (compose-go), and ["NONE"] means disabled.
func healthcheck(h *types.HealthCheckConfig) *spec.Healthcheck {
	if h == nil {
		return nil
	}
	if h.Disable || (len(h.Test) > 0 && h.Test[0] == "NONE") {
		return &spec.Healthcheck{Disable: true}
	}
	out := &spec.Healthcheck{
		Interval:    duration(h.Interval),
		Timeout:     duration(h.Timeout),
		StartPeriod: duration(h.StartPeriod),
	}
	if len(h.Test) > 0 {
		out.Test = slices.Clone([]string(h.Test))
	}
	if h.Retries != nil {
		out.Retries = int(*h.Retries)
	}
	return out
}

func duration(d *types.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}

// convertMounts maps volumes in file order. compose-go has resolved bind sources
// against the project directory; tmpfs mounts are Options.Tmpfs (options.go);
// other types cannot run and are errors.
func convertMounts(service string, in []types.ServiceVolumeConfig, workDir string) ([]spec.Mount, error) {
	var out []spec.Mount
	for _, v := range in {
		switch v.Type {
		case types.VolumeTypeVolume:
			out = append(out, spec.Mount{Type: spec.MountVolume, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
		case types.VolumeTypeBind:
			src := v.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(workDir, src)
			}
			m := spec.Mount{Type: spec.MountBind, Source: src, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Bind != nil {
				m.SELinux = v.Bind.SELinux
			}
			out = append(out, m)
		case types.VolumeTypeTmpfs: // mapped with the tmpfs key by convertOptions
		case types.VolumeTypeImage:
			return nil, errorf(service, "volumes", "image mount at %s: tend does not mount an image's files (engines before API 1.48, such as Docker 20.10, cannot); copy the files into a named volume, or build them into this service's image, instead", v.Target)
		case types.VolumeTypeNamedPipe:
			return nil, errorf(service, "volumes", "npipe mount at %s: named pipes exist on Windows engines only; on Linux bind the unix socket instead (for the engine: /var/run/docker.sock)", v.Target)
		default:
			return nil, errorf(service, "volumes", "%s mount at %s is not supported by tend (want volume, bind or tmpfs)", v.Type, v.Target)
		}
	}
	return out, nil
}

// replicas reads deploy.replicas or scale (compose's older spelling); 1 when neither.
func replicas(sc types.ServiceConfig) (int, error) {
	var deploy *int
	if sc.Deploy != nil {
		deploy = sc.Deploy.Replicas
	}
	switch {
	case sc.Scale != nil && deploy != nil && *sc.Scale != *deploy:
		return 0, errorf(sc.Name, "scale", "%d conflicts with deploy.replicas %d", *sc.Scale, *deploy)
	case sc.Scale != nil:
		return *sc.Scale, nil
	case deploy != nil:
		return *deploy, nil
	}
	return 1, nil
}

// dependencies maps depends_on, sorted by service. A dependency on a service that a
// profile leaves out is dropped when optional (required: false) and an error when
// required, as in compose. Unknown services and cycles are Validate's to find.
func dependencies(cp *types.Project, sc types.ServiceConfig) ([]spec.Dependency, error) {
	var out []spec.Dependency
	for _, dep := range slices.Sorted(maps.Keys(sc.DependsOn)) {
		d := sc.DependsOn[dep]
		if off, disabled := cp.DisabledServices[dep]; disabled {
			if !d.Required {
				continue
			}
			return nil, errorf(sc.Name, "depends_on", "service %q is not enabled; activate one of its profiles (%s)", dep, strings.Join(off.Profiles, ", "))
		}
		cond := spec.DependencyCondition(d.Condition)
		if cond == "" {
			cond = spec.ServiceStarted
		}
		out = append(out, spec.Dependency{Service: dep, Condition: cond, Restart: d.Restart, Required: d.Required})
	}
	return out, nil
}

// convertNetworks keeps the declared networks, but "default" only when a service
// joins it (compose-go declares it whether used or not). compose-go has set engine
// names: <project>_<key> unless name: says otherwise or the network is external.
func convertNetworks(cp *types.Project, joined map[string]bool) []spec.Network {
	var out []spec.Network
	for _, key := range slices.Sorted(maps.Keys(cp.Networks)) {
		if key == defaultNetwork && !joined[key] {
			continue
		}
		n := cp.Networks[key]
		out = append(out, spec.Network{
			Key: key, Name: engineName(cp.Name, key, n.Name), External: bool(n.External),
			Driver: n.Driver, Internal: n.Internal, Labels: nonEmpty(n.Labels), DriverOpts: nonEmpty(n.DriverOpts),
			IPAM: ipam(n.Ipam), IPv6: n.EnableIPv6 != nil && *n.EnableIPv6,
		})
	}
	if _, declared := cp.Networks[defaultNetwork]; joined[defaultNetwork] && !declared {
		out = append(out, spec.Network{Key: defaultNetwork, Name: engineName(cp.Name, defaultNetwork, "")})
		slices.SortFunc(out, func(a, b spec.Network) int { return strings.Compare(a.Key, b.Key) })
	}
	return out
}

// ipam maps a network's ipam section; nil when it has none.
func ipam(in types.IPAMConfig) *spec.IPAM {
	if in.Driver == "" && len(in.Config) == 0 {
		return nil
	}
	out := &spec.IPAM{Driver: in.Driver}
	for _, p := range in.Config {
		if p != nil {
			out.Pools = append(out.Pools, spec.IPAMPool{Subnet: p.Subnet, Gateway: p.Gateway, IPRange: p.IPRange})
		}
	}
	return out
}

// convertVolumes keeps the declared named volumes, sorted by key.
func convertVolumes(cp *types.Project) []spec.Volume {
	var out []spec.Volume
	for _, key := range slices.Sorted(maps.Keys(cp.Volumes)) {
		v := cp.Volumes[key]
		out = append(out, spec.Volume{
			Key: key, Name: engineName(cp.Name, key, v.Name), External: bool(v.External),
			Driver: v.Driver, Labels: nonEmpty(v.Labels), DriverOpts: nonEmpty(v.DriverOpts),
		})
	}
	return out
}

func engineName(project, key, name string) string {
	if name != "" {
		return name
	}
	return project + "_" + key
}
