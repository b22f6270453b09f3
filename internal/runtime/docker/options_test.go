package docker

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/tend-sh/tend/internal/spec"
)

func TestCreateOptionsCarryTheOptions(t *testing.T) {
	p := &spec.Project{Name: "shop", Networks: []spec.Network{{Key: "default", Name: "shop_default"}}}
	svc := &spec.Service{
		Name: "web", Image: "tend-demo:dev",
		Mounts:   []spec.Mount{{Type: spec.MountBind, Source: "/srv", Target: "/srv"}},
		Networks: []spec.NetworkAttach{{Network: "default"}},
		Options: spec.Options{
			User: "1000:1000", WorkingDir: "/work", Hostname: "web", ReadOnly: true, Init: true,
			CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"},
			ExtraHosts: []spec.ExtraHost{{Host: "db", IP: "10.0.0.2"}, {Host: "v6", IP: "::1"}},
			DNS:        []string{"1.1.1.1"},
			Tmpfs:      []spec.Tmpfs{{Target: "/run"}, {Target: "/tmp", Options: "size=1m,mode=1777"}},
			Secrets:    []spec.FileMount{{Name: "token", Source: "/etc/token", Target: "/run/secrets/token"}},
			Configs:    []spec.FileMount{{Name: "conf", Source: "/etc/conf", Target: "/conf"}},
			Ulimits:    []spec.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
			Limits:     spec.Limits{CPUs: 0.1, Memory: 64 << 20, Pids: 50},
			Logging:    &spec.Logging{Driver: "json-file", Options: map[string]string{"max-size": "1m"}},
		},
	}
	opts, _, err := createOptions(p, svc, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, host := opts.Config, opts.HostConfig
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("user", cfg.User, "1000:1000")
	check("working dir", cfg.WorkingDir, "/work")
	check("hostname", cfg.Hostname, "web")
	check("read-only rootfs", host.ReadonlyRootfs, true)
	check("init", *host.Init, true)
	check("cap add", host.CapAdd, []string{"NET_ADMIN"})
	check("cap drop", host.CapDrop, []string{"ALL"})
	check("extra hosts", host.ExtraHosts, []string{"db:10.0.0.2", "v6:::1"})
	check("dns", host.DNS, []netip.Addr{netip.MustParseAddr("1.1.1.1")})
	check("tmpfs", host.Tmpfs, map[string]string{"/run": "", "/tmp": "size=1m,mode=1777"})
	check("mounts", host.Mounts, []mount.Mount{
		{Type: mount.TypeBind, Source: "/srv", Target: "/srv"},
		{Type: mount.TypeBind, Source: "/etc/token", Target: "/run/secrets/token", ReadOnly: true},
		{Type: mount.TypeBind, Source: "/etc/conf", Target: "/conf", ReadOnly: true},
	})
	check("ulimits", host.Ulimits, []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}})
	check("nano cpus", host.NanoCPUs, int64(100_000_000))
	check("memory", host.Memory, int64(64<<20))
	check("pids", *host.PidsLimit, int64(50))
	check("logging", host.LogConfig, container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m"}})
}

// TestCreateOptionsWithoutOptions checks that a service setting none of the
// Options leaves the engine's defaults alone.
func TestCreateOptionsWithoutOptions(t *testing.T) {
	p := &spec.Project{Name: "shop", Networks: []spec.Network{{Key: "default", Name: "shop_default"}}}
	svc := &spec.Service{Name: "web", Image: "tend-demo:dev", Networks: []spec.NetworkAttach{{Network: "default"}}}
	opts, _, err := createOptions(p, svc, 1)
	if err != nil {
		t.Fatal(err)
	}
	host := opts.HostConfig
	if host.Init != nil || host.PidsLimit != nil || host.Tmpfs != nil || host.Memory != 0 || host.NanoCPUs != 0 ||
		host.LogConfig.Type != "" || host.ReadonlyRootfs || len(host.Mounts) != 0 || opts.Config.User != "" {
		t.Errorf("defaults changed: %+v", host)
	}
}
