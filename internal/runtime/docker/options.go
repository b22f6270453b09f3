package docker

import (
	"fmt"
	"maps"
	"math"
	"net/netip"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/tend-sh/tend/internal/spec"
)

// applyOptions carries a service's Options into the create call as docker
// compose would: secrets and configs as read-only bind mounts of their files.
func applyOptions(o spec.Options, cfg *container.Config, host *container.HostConfig) error {
	cfg.User = o.User
	cfg.WorkingDir = o.WorkingDir
	cfg.Hostname = o.Hostname
	host.ReadonlyRootfs = o.ReadOnly
	if o.Init {
		host.Init = &o.Init
	}
	host.CapAdd = o.CapAdd
	host.CapDrop = o.CapDrop
	for _, h := range o.ExtraHosts {
		// the engine's own syntax; API 1.41 knows no other separator, and an
		// IPv6 address after the first colon is read whole
		host.ExtraHosts = append(host.ExtraHosts, h.Host+":"+h.IP)
	}
	for _, s := range o.DNS {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("dns %q: %w", s, err)
		}
		host.DNS = append(host.DNS, addr)
	}
	if len(o.Tmpfs) > 0 {
		host.Tmpfs = map[string]string{}
		for _, t := range o.Tmpfs {
			host.Tmpfs[t.Target] = t.Options
		}
	}
	for _, f := range append(append([]spec.FileMount{}, o.Secrets...), o.Configs...) {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: f.Source, Target: f.Target, ReadOnly: true})
	}
	for _, u := range o.Ulimits {
		host.Ulimits = append(host.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	host.NanoCPUs = int64(math.Round(o.Limits.CPUs * 1e9))
	host.Memory = int64(o.Limits.Memory)
	if o.Limits.Pids != 0 {
		host.PidsLimit = &o.Limits.Pids
	}
	if l := o.Logging; l != nil {
		host.LogConfig = container.LogConfig{Type: l.Driver, Config: maps.Clone(l.Options)}
	}
	return nil
}
