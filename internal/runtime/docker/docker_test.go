package docker

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// fakeEngine answers /_ping with a given API version and records the paths asked.
type fakeEngine struct {
	mu    sync.Mutex
	paths []string
}

func startFakeEngine(t *testing.T, apiVersion string) *fakeEngine {
	t.Helper()
	f := &fakeEngine{}
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.paths = append(f.paths, r.URL.Path)
		f.mu.Unlock()
		w.Header().Set("Api-Version", apiVersion)
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Write([]byte("OK"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("[]"))
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	return f
}

// The same binary must drive Docker 20.10 (API 1.41) and current engines
// (1.44 and later): the client negotiates instead of pinning a version.
func TestNegotiatesTheEnginesAPIVersion(t *testing.T) {
	for _, version := range []string{"1.41", "1.44", "1.47"} {
		t.Run(version, func(t *testing.T) {
			f := startFakeEngine(t, version)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d, err := New(ctx, Config{})
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer d.Close()
			if _, err := d.List(ctx, "p"); err != nil {
				t.Fatalf("list: %v", err)
			}
			if d.APIVersion() != version {
				t.Errorf("negotiated %s, want %s", d.APIVersion(), version)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			last := f.paths[len(f.paths)-1]
			if want := "/v" + version + "/containers/json"; last != want {
				t.Errorf("listed at %s, want %s", last, want)
			}
		})
	}
}

func TestCreateOptionsCarryTheSpec(t *testing.T) {
	p := &spec.Project{
		Name:     "shop",
		Networks: []spec.Network{{Key: "back", Name: "shop_back"}, {Key: "front", Name: "custom-front"}},
		Volumes:  []spec.Volume{{Key: "data", Name: "shop_data"}},
	}
	svc := &spec.Service{
		Name: "db", Image: "tend-demo:dev", Command: []string{"-name", "db"},
		Environment: map[string]string{"B": "2", "A": "1"},
		Ports: []spec.Port{{HostIP: "127.0.0.1", HostPort: 5432, ContainerPort: 8080, Protocol: "tcp"},
			{HostPort: 5353, ContainerPort: 53, Protocol: "udp"}},
		Mounts: []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/data"}, {Type: spec.MountBind, Source: "/etc/hosts", Target: "/h", ReadOnly: true},
			{Type: spec.MountBind, Source: "/srv/z", Target: "/z", ReadOnly: true, SELinux: "z"}},
		Networks:        []spec.NetworkAttach{{Network: "back", Aliases: []string{"database"}}, {Network: "front"}},
		Healthcheck:     &spec.Healthcheck{Test: []string{"CMD", "/demo", "-probe", "x"}, Interval: time.Second, Retries: 3},
		Labels:          map[string]string{"team": "a"},
		StopGracePeriod: 1500 * time.Millisecond,
		StopSignal:      "SIGINT",
		Replicas:        2,
	}
	opts, extra, err := createOptions(p, svc, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg, host := opts.Config, opts.HostConfig
	if opts.Name != "shop-db-2" {
		t.Errorf("name %q", opts.Name)
	}
	for k, v := range map[string]string{runtime.LabelProject: "shop", runtime.LabelService: "db", runtime.LabelSlot: "2", runtime.LabelHash: svc.Hash(), "team": "a"} {
		if cfg.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Labels[k], v)
		}
	}
	if strings.Join(cfg.Env, ",") != "A=1,B=2" {
		t.Errorf("env %v: want sorted A=1,B=2", cfg.Env)
	}
	if *cfg.StopTimeout != 2 || cfg.StopSignal != "SIGINT" {
		t.Errorf("stop: %d %s; want 2s (rounded up) and SIGINT", *cfg.StopTimeout, cfg.StopSignal)
	}
	if host.RestartPolicy.Name != "no" {
		t.Errorf("engine restart policy %q: tend restarts, the engine must not", host.RestartPolicy.Name)
	}
	if host.Mounts[0].Source != "shop_data" || !host.Mounts[1].ReadOnly || len(host.Mounts) != 2 {
		t.Errorf("mounts %+v", host.Mounts)
	}
	if strings.Join(host.Binds, " ") != "/srv/z:/z:ro,z" { // only the old form relabels
		t.Errorf("binds %q, want the relabelled bind", host.Binds)
	}
	if string(host.NetworkMode) != "shop_back" || opts.NetworkingConfig.EndpointsConfig["shop_back"].Aliases[1] != "database" {
		t.Errorf("first network: %s %+v", host.NetworkMode, opts.NetworkingConfig.EndpointsConfig)
	}
	if ep := extra["custom-front"]; ep == nil || ep.Aliases[0] != "db" || len(extra) != 1 {
		t.Errorf("second network is joined after create: %+v", extra)
	}
	if cfg.Healthcheck.Retries != 3 {
		t.Errorf("healthcheck %+v", cfg.Healthcheck)
	}
	// TCP ports are tend's proxy's: exposed, never bound. A fixed UDP host
	// port can be bound once: replica 1 publishes it, the others only expose it.
	if len(host.PortBindings) != 0 || len(cfg.ExposedPorts) != 2 {
		t.Errorf("replica 2: ports %v exposed %v; want exposed, not bound", host.PortBindings, cfg.ExposedPorts)
	}
	first, _, _ := createOptions(p, svc, 1)
	if b := first.HostConfig.PortBindings; len(b) != 1 {
		t.Errorf("replica 1 should bind the UDP host port only: %v", b)
	}
}
