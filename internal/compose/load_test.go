package compose

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/tend-sh/tend/internal/spec"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// defaultExtension is what a service without x-tend gets.
var defaultExtension = spec.Extension{Backoff: spec.Backoff{
	Initial: spec.DefaultBackoffInitial, Max: spec.DefaultBackoffMax, ResetAfter: spec.DefaultBackoffResetAfter,
}}

func TestLoadFull(t *testing.T) {
	p, warnings, err := Load(context.Background(), LoadOptions{
		Files:   []string{"testdata/full/compose.yaml"},
		Environ: []string{"FROM_OS=os-value"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every key of the file is honoured; the only warning says that web's fixed
	// UDP host port is bound by replica 1 alone (tend's proxy balances TCP).
	if len(warnings) != 1 || !strings.Contains(warnings[0].String(), "udp host port 9090 is published by replica 1 only") {
		t.Errorf("warnings = %v, want the UDP shared-port warning only", warnings)
	}
	conf, err := filepath.Abs("testdata/full/conf")
	if err != nil {
		t.Fatal(err)
	}
	want := fullProject(conf)
	if p.Name != want.Name {
		t.Errorf("name = %q, want %q", p.Name, want.Name)
	}
	for i := range want.Services {
		if i >= len(p.Services) {
			t.Fatalf("got %d services, want %d", len(p.Services), len(want.Services))
		}
		diff(t, "service "+want.Services[i].Name, p.Services[i], want.Services[i])
	}
	diff(t, "services", len(p.Services), len(want.Services))
	diff(t, "networks", p.Networks, want.Networks)
	diff(t, "volumes", p.Volumes, want.Volumes)
}

// fullProject is testdata/full/compose.yaml as tend sees it.
func fullProject(conf string) *spec.Project {
	return &spec.Project{
		Name: "shop",
		Services: []spec.Service{
			{
				Name: "cache", Image: "redis:7",
				Networks:    []spec.NetworkAttach{{Network: "back"}},
				Healthcheck: &spec.Healthcheck{Disable: true},
				Replicas:    0,
				Restart:     spec.RestartPolicy{Condition: spec.RestartOnFailure, MaxAttempts: 4},
				Tend:        defaultExtension,
			},
			{
				Name: "db", Image: "postgres:16",
				Mounts:      []spec.Mount{{Type: spec.MountVolume, Source: "pgdata", Target: "/var/lib/postgresql/data"}},
				Networks:    []spec.NetworkAttach{{Network: "back"}},
				Healthcheck: &spec.Healthcheck{Test: []string{"CMD-SHELL", "pg_isready -U shop"}},
				Replicas:    1,
				Restart:     spec.RestartPolicy{Condition: spec.RestartAny},
				Tend:        defaultExtension,
			},
			{
				Name: "migrate", Image: "shop/migrate:1.0",
				Command:  []string{"/migrate", "up"},
				Networks: []spec.NetworkAttach{{Network: "back"}},
				Replicas: 1,
				Restart:  spec.RestartPolicy{Condition: spec.RestartNone},
				Tend:     defaultExtension,
			},
			fullWeb(conf),
			{
				Name: "worker", Image: "shop/worker:1.0",
				Networks: []spec.NetworkAttach{{Network: "default"}},
				Replicas: 1,
				Restart:  spec.RestartPolicy{Condition: spec.RestartAny},
				Tend: spec.Extension{Backoff: spec.Backoff{
					Initial: spec.DefaultBackoffInitial, Max: 10 * time.Second, ResetAfter: spec.DefaultBackoffResetAfter,
				}},
			},
		},
		Networks: []spec.Network{
			{Key: "back", Name: "shop_back", Internal: true,
				DriverOpts: map[string]string{"com.docker.network.bridge.enable_icc": "true"}},
			{Key: "default", Name: "shop_default"},
			{Key: "front", Name: "shop-front", Driver: "bridge", Labels: map[string]string{"com.example.net": "front"}},
			{Key: "outside", Name: "corp-net", External: true},
		},
		Volumes: []spec.Volume{
			{Key: "pgdata", Name: "shop_pgdata", Driver: "local", Labels: map[string]string{"backup": "daily"}},
			{Key: "static", Name: "shop_static"},
			{Key: "uploads", Name: "shop-uploads", External: true},
		},
	}
}

func fullWeb(conf string) spec.Service {
	return spec.Service{
		Name: "web", Image: "shop/web:2.1", // WEB_TAG from .env beats the default
		Command:    []string{"/app", "-listen", ":8080"},
		Entrypoint: []string{"/init"},
		Environment: map[string]string{
			"LOG_LEVEL": "debug",   // environment wins over env_file
			"FROM_FILE": "yes",     // env_file
			"REGION":    "eu-west", // interpolated from .env
			"FROM_OS":   "os-value",
		},
		Ports: []spec.Port{
			{HostPort: 8080, ContainerPort: 8080, Protocol: "tcp"},
			{HostIP: "127.0.0.1", HostPort: 9090, ContainerPort: 9090, Protocol: "udp"},
			{HostIP: "0.0.0.0", HostPort: 8443, ContainerPort: 8443, Protocol: "tcp"},
			{ContainerPort: 7000, Protocol: "tcp"},
		},
		Mounts: []spec.Mount{
			{Type: spec.MountVolume, Source: "static", Target: "/srv/static", ReadOnly: true},
			{Type: spec.MountBind, Source: conf, Target: "/etc/web"},
			{Type: spec.MountVolume, Target: "/var/cache/web"},
			{Type: spec.MountVolume, Source: "uploads", Target: "/srv/uploads"},
		},
		Networks: []spec.NetworkAttach{{Network: "back"}, {Network: "front", Aliases: []string{"www", "shop-web"}}},
		Healthcheck: &spec.Healthcheck{
			Test:     []string{"CMD", "/app", "-probe"},
			Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: 10 * time.Second, Retries: 3,
		},
		Labels:          map[string]string{"com.example.team": "storefront"},
		StopGracePeriod: 30 * time.Second,
		StopSignal:      "SIGTERM",
		Replicas:        3,
		Restart:         spec.RestartPolicy{Condition: spec.RestartOnFailure, Delay: 2 * time.Second, MaxAttempts: 5, Window: 2 * time.Minute},
		DependsOn: []spec.Dependency{
			{Service: "cache", Condition: spec.ServiceStarted, Required: false},
			{Service: "db", Condition: spec.ServiceHealthy, Restart: true, Required: true},
			{Service: "migrate", Condition: spec.ServiceCompletedSuccessfully, Required: true},
		},
		Tend: spec.Extension{Backoff: spec.Backoff{Initial: time.Second, Max: 2 * time.Minute, ResetAfter: 30 * time.Second}},
	}
}

// TestLoadJSONRoundTrip checks that a loaded Project survives the API unchanged.
func TestLoadJSONRoundTrip(t *testing.T) {
	p, _, err := Load(context.Background(), LoadOptions{Files: []string{"testdata/full/compose.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, p)
}

func TestLoadEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		image   string
		env     map[string]string
	}{
		{
			name:  "dotenv only",
			image: "app:from-dotenv",
			env: map[string]string{"REGION": "eu", "COLOR": "from-dotenv", "LEVEL": "info",
				"MISSING": "", "FILE_ONLY": "yes"},
		},
		{
			name:    "environ wins over dotenv",
			environ: []string{"TAG=from-environ", "COLOR=blue", "LEVEL=debug", "PASSED=through"},
			image:   "app:from-environ",
			env: map[string]string{"REGION": "eu", "COLOR": "blue", "LEVEL": "debug",
				"MISSING": "", "FILE_ONLY": "yes", "PASSED": "through"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := Load(context.Background(), LoadOptions{Files: []string{"testdata/env/compose.yaml"}, Environ: tt.environ})
			if err != nil {
				t.Fatal(err)
			}
			s := p.Services[0]
			diff(t, "image", s.Image, tt.image)
			diff(t, "environment", s.Environment, tt.env)
		})
	}
}

func TestLoadProfiles(t *testing.T) {
	tests := []struct {
		name     string
		profiles []string
		environ  []string
		services []string
		deps     []spec.Dependency
	}{
		{name: "none active", services: []string{"app"}},
		{name: "debug", profiles: []string{"debug"}, services: []string{"app", "debug", "tools"},
			deps: []spec.Dependency{{Service: "debug", Condition: spec.ServiceStarted}}},
		{name: "tools", profiles: []string{"tools"}, services: []string{"app", "tools"}},
		{name: "from COMPOSE_PROFILES", environ: []string{"COMPOSE_PROFILES=debug"},
			services: []string{"app", "debug", "tools"}, deps: []spec.Dependency{{Service: "debug", Condition: spec.ServiceStarted}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := Load(context.Background(), LoadOptions{
				Files: []string{"testdata/profiles/compose.yaml"}, Profiles: tt.profiles, Environ: tt.environ,
			})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range p.Services {
				names = append(names, s.Name)
			}
			diff(t, "services", names, tt.services)
			app, _ := p.Service("app")
			diff(t, "app depends_on", app.DependsOn, tt.deps)
		})
	}
}

func TestLoadProjectName(t *testing.T) {
	tests := []struct {
		name string
		opts LoadOptions
		want string
	}{
		{name: "from the file", opts: LoadOptions{Files: []string{"testdata/full/compose.yaml"}}, want: "shop"},
		{name: "-p wins", opts: LoadOptions{Files: []string{"testdata/full/compose.yaml"}, ProjectName: "other"}, want: "other"},
		{name: "COMPOSE_PROJECT_NAME wins over the file",
			opts: LoadOptions{Files: []string{"testdata/full/compose.yaml"}, Environ: []string{"COMPOSE_PROJECT_NAME=envname"}}, want: "envname"},
		{name: "directory name", opts: LoadOptions{Files: []string{"testdata/profiles/compose.yaml"}}, want: "profiles"},
		{name: "directory name normalised", opts: LoadOptions{WorkingDir: writeCompose(t, "My.App", minimal)}, want: "myapp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := Load(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			diff(t, "name", p.Name, tt.want)
		})
	}
}

func TestLoadDefaultFile(t *testing.T) {
	tests := []struct {
		dir   string
		image string
	}{
		{dir: "testdata/discover/both", image: "compose-yaml:1"},
		{dir: "testdata/discover/yml", image: "yml:1"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.dir), func(t *testing.T) {
			p, _, err := Load(context.Background(), LoadOptions{WorkingDir: tt.dir})
			if err != nil {
				t.Fatal(err)
			}
			diff(t, "image", p.Services[0].Image, tt.image)
		})
	}
}

const minimal = "services:\n  app:\n    image: app:1\n"

// writeCompose writes body as compose.yaml in a new directory named dir and
// returns the directory.
func writeCompose(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), dir)
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "compose.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadService loads a one-service file whose service "app" has the given keys
// (indented by four spaces) and returns it.
func loadService(t *testing.T, keys string) (spec.Service, error) {
	t.Helper()
	dir := writeCompose(t, "p", "services:\n  app:\n    image: app:1\n"+keys+"\n  other:\n    image: other:1\n    healthcheck:\n      test: [CMD, /probe]\n")
	p, _, err := Load(context.Background(), LoadOptions{WorkingDir: dir})
	if err != nil {
		return spec.Service{}, err
	}
	s, _ := p.Service("app")
	return *s, nil
}

func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// A udp host port range gives each replica a port of its own: no warning while it
// has enough ports, one when it has fewer than the replicas.
func TestLoadUDPRangeWarnings(t *testing.T) {
	for _, tt := range []struct {
		replicas int
		want     []string
	}{
		{1, nil},
		{3, nil},
		{4, []string{`compose.yaml: service "stats": ports: udp host ports 9000-9002 are a port each for 3 of the 4 replicas: the engine cannot start the others (tend's proxy balances tcp only)`}},
	} {
		dir := writeCompose(t, "p", fmt.Sprintf("services:\n  stats:\n    image: s:1\n    deploy: {replicas: %d}\n    ports: [\"9000-9002:9125/udp\"]\n", tt.replicas))
		_, warnings, err := Load(context.Background(), LoadOptions{WorkingDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, w := range warnings {
			got = append(got, w.String())
		}
		diff(t, fmt.Sprintf("%d replicas", tt.replicas), got, tt.want)
	}
}
