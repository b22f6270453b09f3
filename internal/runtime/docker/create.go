package docker

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// createOptions translates a replica of svc into the engine's create call, and
// the endpoints of the networks to join after it.
func createOptions(p *spec.Project, svc *spec.Service, slot int) (client.ContainerCreateOptions, map[string]*network.EndpointSettings, error) {
	labels := maps.Clone(svc.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[runtime.LabelProject] = p.Name
	labels[runtime.LabelService] = svc.Name
	labels[runtime.LabelSlot] = strconv.Itoa(slot)
	labels[runtime.LabelHash] = svc.Hash()

	cfg := &container.Config{
		Image:      svc.Image,
		Cmd:        svc.Command,
		Entrypoint: svc.Entrypoint,
		Env:        env(svc.Environment),
		Labels:     labels,
		StopSignal: svc.StopSignal,
	}
	if svc.StopGracePeriod > 0 {
		secs := int((svc.StopGracePeriod + 999_999_999) / 1_000_000_000)
		cfg.StopTimeout = &secs
	}
	if h := svc.Healthcheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
		if h.Disable {
			cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		}
	}
	host := &container.HostConfig{
		// tend restarts containers itself; the engine's policy would race it.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
	}
	if err := ports(svc, slot, cfg, host); err != nil {
		return client.ContainerCreateOptions{}, nil, err
	}
	for _, m := range svc.Mounts {
		if m.SELinux != "" {
			host.Binds = append(host.Binds, relabelledBind(m))
			continue
		}
		mm := mount.Mount{Type: mount.Type(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if m.Type == spec.MountVolume && m.Source != "" {
			mm.Source = volumeName(p, m.Source)
		}
		host.Mounts = append(host.Mounts, mm)
	}
	if err := applyOptions(svc.Options, cfg, host); err != nil {
		return client.ContainerCreateOptions{}, nil, err
	}

	endpoints := map[string]*network.EndpointSettings{}
	var first string
	for i, a := range svc.Networks {
		name := p.NetworkName(a.Network)
		ep := &network.EndpointSettings{Aliases: append([]string{svc.Name}, a.Aliases...)}
		if a.IPv4Address != "" || a.IPv6Address != "" {
			ep.IPAMConfig = &network.EndpointIPAMConfig{}
			ep.IPAMConfig.IPv4Address, _ = netip.ParseAddr(a.IPv4Address) // Validate has checked them
			ep.IPAMConfig.IPv6Address, _ = netip.ParseAddr(a.IPv6Address)
		}
		endpoints[name] = ep
		if i == 0 {
			first = name
		}
	}
	var netcfg *network.NetworkingConfig
	if mode := networkMode(p, svc); mode != "" {
		host.NetworkMode = container.NetworkMode(mode)
	} else if first != "" {
		host.NetworkMode = container.NetworkMode(first)
		netcfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{first: endpoints[first]}}
		delete(endpoints, first)
	}
	return client.ContainerCreateOptions{
		Name:             runtime.ReplicaName(p.Name, svc, slot),
		Config:           cfg,
		HostConfig:       host,
		NetworkingConfig: netcfg,
	}, endpoints, nil
}

// networkMode is the engine's network mode of a service with network_mode, or "".
// service:NAME becomes container:<NAME's replica 1>: the engine knows containers,
// not services.
func networkMode(p *spec.Project, svc *spec.Service) string {
	if name, ok := strings.CutPrefix(svc.NetworkMode, "service:"); ok {
		if owner, ok := p.Service(name); ok {
			return "container:" + runtime.ReplicaName(p.Name, owner, 1)
		}
	}
	return svc.NetworkMode
}

// relabelledBind is a bind in the engine's older "src:dst:opts" form: only that
// form carries SELinux relabelling (z, Z); the mounts API has no such option.
func relabelledBind(m spec.Mount) string {
	opts := m.SELinux
	if m.ReadOnly {
		opts = "ro," + opts
	}
	return m.Source + ":" + m.Target + ":" + opts
}

func env(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// ports publishes svc's ports. A fixed host port can be bound once, so only
// replica 1 publishes it (the loader warns); the others expose the port only.
func ports(svc *spec.Service, slot int, cfg *container.Config, host *container.HostConfig) error {
	if len(svc.Ports) == 0 {
		return nil
	}
	cfg.ExposedPorts = network.PortSet{}
	host.PortBindings = network.PortMap{}
	for _, pt := range svc.Ports {
		port, ok := network.PortFrom(pt.ContainerPort, network.IPProtocol(pt.Protocol))
		if !ok {
			return fmt.Errorf("port %d/%s is not valid", pt.ContainerPort, pt.Protocol)
		}
		b := network.PortBinding{}
		if pt.HostPort != 0 {
			b.HostPort = strconv.Itoa(int(pt.HostPort))
		}
		if pt.HostPortEnd != 0 {
			b.HostPort += "-" + strconv.Itoa(int(pt.HostPortEnd)) // the engine picks a free one of the range
		}
		if pt.HostIP != "" {
			ip, err := netip.ParseAddr(pt.HostIP)
			if err != nil {
				return fmt.Errorf("port %d: host ip %q: %w", pt.ContainerPort, pt.HostIP, err)
			}
			b.HostIP = ip
		}
		cfg.ExposedPorts[port] = struct{}{}
		// tend's proxy listens on published TCP ports and balances over the
		// replicas' addresses; UDP and SCTP are published by the engine, and a
		// fixed such port by replica 1 alone.
		if pt.Protocol == "tcp" || (pt.HostPort != 0 && pt.HostPortEnd == 0 && slot > 1) {
			continue
		}
		host.PortBindings[port] = append(host.PortBindings[port], b)
	}
	return nil
}

func volumeName(p *spec.Project, key string) string {
	for _, v := range p.Volumes {
		if v.Key == key {
			return v.Name
		}
	}
	return p.Name + "_" + key
}

// NetworkGateway is the gateway of a network's first IPAM pool: the host's
// address on a bridge network.
func (d *Docker) NetworkGateway(ctx context.Context, name string) (string, error) {
	res, err := d.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("docker: inspect network %s: %w", name, err)
	}
	if res.Network.Internal {
		return "", nil // the host is not reachable from an internal network
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Gateway.IsValid() && c.Gateway.Is4() {
			return c.Gateway.String(), nil
		}
	}
	return "", nil
}

func (d *Docker) EnsureNetwork(ctx context.Context, project string, n spec.Network) error {
	_, err := d.c.NetworkInspect(ctx, n.Name, client.NetworkInspectOptions{})
	switch {
	case err == nil:
		return nil
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("docker: inspect network %s: %w", n.Name, err)
	case n.External:
		return fmt.Errorf("docker: network %s is declared external but does not exist", n.Name)
	}
	labels := maps.Clone(n.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[runtime.LabelProject] = project
	driver := n.Driver
	if driver == "" {
		driver = "bridge"
	}
	opts := client.NetworkCreateOptions{Driver: driver, Internal: n.Internal, Options: n.DriverOpts, Labels: labels}
	if opts.IPAM, err = ipamConfig(n.IPAM); err != nil {
		return fmt.Errorf("docker: create network %s: %w", n.Name, err)
	}
	v6 := n.IPv6
	if opts.IPAM != nil {
		for _, pool := range opts.IPAM.Config {
			v6 = v6 || pool.Subnet.Addr().Is6()
		}
	}
	if v6 {
		opts.EnableIPv6 = &v6
	}
	_, err = d.c.NetworkCreate(ctx, n.Name, opts)
	if err != nil && !cerrdefs.IsConflict(err) && !cerrdefs.IsAlreadyExists(err) {
		return fmt.Errorf("docker: create network %s: %w", n.Name, err)
	}
	return nil
}

// ipamConfig is the engine's form of a network's ipam section; nil for none.
func ipamConfig(in *spec.IPAM) (*network.IPAM, error) {
	if in == nil {
		return nil, nil
	}
	out := &network.IPAM{Driver: in.Driver}
	for _, p := range in.Pools {
		var c network.IPAMConfig
		var err error
		if c.Subnet, err = netip.ParsePrefix(p.Subnet); err != nil {
			return nil, fmt.Errorf("ipam subnet %q: %w", p.Subnet, err)
		}
		if p.Gateway != "" {
			if c.Gateway, err = netip.ParseAddr(p.Gateway); err != nil {
				return nil, fmt.Errorf("ipam gateway %q: %w", p.Gateway, err)
			}
		}
		if p.IPRange != "" {
			if c.IPRange, err = netip.ParsePrefix(p.IPRange); err != nil {
				return nil, fmt.Errorf("ipam ip_range %q: %w", p.IPRange, err)
			}
		}
		out.Config = append(out.Config, c)
	}
	return out, nil
}

func (d *Docker) RemoveNetwork(ctx context.Context, n spec.Network) error {
	if n.External {
		return nil
	}
	if _, err := d.c.NetworkRemove(ctx, n.Name, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: remove network %s: %w", n.Name, err)
	}
	return nil
}

func (d *Docker) EnsureVolume(ctx context.Context, project string, v spec.Volume) error {
	_, err := d.c.VolumeInspect(ctx, v.Name, client.VolumeInspectOptions{})
	switch {
	case err == nil:
		return nil
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("docker: inspect volume %s: %w", v.Name, err)
	case v.External:
		return fmt.Errorf("docker: volume %s is declared external but does not exist", v.Name)
	}
	labels := maps.Clone(v.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[runtime.LabelProject] = project
	if _, err := d.c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: v.Name, Driver: v.Driver, DriverOpts: v.DriverOpts, Labels: labels}); err != nil {
		return fmt.Errorf("docker: create volume %s: %w", v.Name, err)
	}
	return nil
}

func (d *Docker) RemoveVolume(ctx context.Context, v spec.Volume) error {
	if v.External {
		return nil
	}
	if _, err := d.c.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: remove volume %s: %w", v.Name, err)
	}
	return nil
}
