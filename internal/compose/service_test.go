package compose

import (
	"context"
	"fmt"

	"github.com/tend-sh/tend/internal/spec"
	"testing"
	"time"
)

func TestLoadRestart(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want spec.RestartPolicy
	}{
		{name: "neither key: any", keys: "", want: spec.RestartPolicy{Condition: spec.RestartAny}},
		{name: "no", keys: `    restart: "no"`, want: spec.RestartPolicy{Condition: spec.RestartNone}},
		{name: "unquoted no", keys: "    restart: no", want: spec.RestartPolicy{Condition: spec.RestartNone}},
		{name: "always", keys: "    restart: always", want: spec.RestartPolicy{Condition: spec.RestartAny}},
		{name: "unless-stopped", keys: "    restart: unless-stopped", want: spec.RestartPolicy{Condition: spec.RestartAny}},
		{name: "on-failure", keys: "    restart: on-failure", want: spec.RestartPolicy{Condition: spec.RestartOnFailure}},
		{name: "on-failure:3", keys: "    restart: on-failure:3", want: spec.RestartPolicy{Condition: spec.RestartOnFailure, MaxAttempts: 3}},
		{name: "restart_policy without condition: any", keys: "    deploy:\n      restart_policy: {delay: 5s}",
			want: spec.RestartPolicy{Condition: spec.RestartAny, Delay: 5 * time.Second}},
		{name: "restart_policy none", keys: "    deploy:\n      restart_policy: {condition: none}",
			want: spec.RestartPolicy{Condition: spec.RestartNone}},
		{name: "restart_policy wins over restart", keys: "    restart: always\n    deploy:\n      restart_policy: {condition: on-failure, max_attempts: 2, window: 1m}",
			want: spec.RestartPolicy{Condition: spec.RestartOnFailure, MaxAttempts: 2, Window: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadService(t, tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			diff(t, "restart", s.Restart, tt.want)
		})
	}
}

func TestLoadRestartErrors(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want string
	}{
		{name: "bad count", keys: "    restart: on-failure:many",
			want: `compose.yaml: service "app": restart: on-failure needs a count of 0 or more (got "on-failure:many")`},
		{name: "negative count", keys: "    restart: on-failure:-1",
			want: `compose.yaml: service "app": restart: on-failure needs a count of 0 or more (got "on-failure:-1")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadService(t, tt.keys)
			wantError(t, err, tt.want)
		})
	}
}

func TestLoadDependsOn(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want []spec.Dependency
	}{
		{name: "none", keys: "", want: nil},
		{name: "short syntax", keys: "    depends_on: [other]",
			want: []spec.Dependency{{Service: "other", Condition: spec.ServiceStarted, Required: true}}},
		{name: "long syntax", keys: "    depends_on:\n      other: {condition: service_healthy, restart: true}",
			want: []spec.Dependency{{Service: "other", Condition: spec.ServiceHealthy, Restart: true, Required: true}}},
		{name: "completed", keys: "    depends_on:\n      other: {condition: service_completed_successfully, required: false}",
			want: []spec.Dependency{{Service: "other", Condition: spec.ServiceCompletedSuccessfully}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadService(t, tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			diff(t, "depends_on", s.DependsOn, tt.want)
		})
	}
}

func TestLoadExtension(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want spec.Backoff
	}{
		{name: "absent: defaults", keys: "",
			want: spec.Backoff{Initial: spec.DefaultBackoffInitial, Max: spec.DefaultBackoffMax, ResetAfter: spec.DefaultBackoffResetAfter}},
		{name: "empty: defaults", keys: "    x-tend: {}",
			want: spec.Backoff{Initial: spec.DefaultBackoffInitial, Max: spec.DefaultBackoffMax, ResetAfter: spec.DefaultBackoffResetAfter}},
		{name: "null backoff: defaults", keys: "    x-tend:\n      backoff:",
			want: spec.Backoff{Initial: spec.DefaultBackoffInitial, Max: spec.DefaultBackoffMax, ResetAfter: spec.DefaultBackoffResetAfter}},
		{name: "all set", keys: "    x-tend:\n      backoff: {initial: 250ms, max: 1m30s, reset_after: 1m}",
			want: spec.Backoff{Initial: 250 * time.Millisecond, Max: 90 * time.Second, ResetAfter: time.Minute}},
		{name: "compose units", keys: "    x-tend:\n      backoff: {max: 1d}",
			want: spec.Backoff{Initial: spec.DefaultBackoffInitial, Max: 24 * time.Hour, ResetAfter: spec.DefaultBackoffResetAfter}},
		{name: "initial equal to max", keys: "    x-tend:\n      backoff: {initial: 5s, max: 5s}",
			want: spec.Backoff{Initial: 5 * time.Second, Max: 5 * time.Second, ResetAfter: spec.DefaultBackoffResetAfter}},
		{name: "interpolated", keys: "    x-tend:\n      backoff: {initial: \"${INITIAL:-2s}\"}",
			want: spec.Backoff{Initial: 2 * time.Second, Max: spec.DefaultBackoffMax, ResetAfter: spec.DefaultBackoffResetAfter}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadService(t, tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			diff(t, "backoff", s.Tend.Backoff, tt.want)
		})
	}
}

func TestLoadIdempotentMethods(t *testing.T) {
	s, err := loadService(t, "    x-tend:\n      idempotent: [PUT, DELETE, PUT]")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "idempotent", s.Tend.Idempotent, []string{"PUT", "DELETE"})
}

func TestLoadExtensionErrors(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want string
	}{
		{name: "not a mapping", keys: "    x-tend: fast",
			want: `compose.yaml: service "app": x-tend: must be a mapping (got fast)`},
		{name: "number for a duration", keys: "    x-tend:\n      backoff: {initial: 500}",
			want: `compose.yaml: service "app": x-tend.backoff.initial: invalid duration 500 (want e.g. 500ms or 1m30s)`},
		{name: "zero", keys: "    x-tend:\n      backoff: {reset_after: 0s}",
			want: `compose.yaml: service "app": x-tend.backoff.reset_after: must be positive (got 0s)`},
		{name: "methods not a list", keys: "    x-tend:\n      idempotent: PUT",
			want: `compose.yaml: service "app": x-tend.idempotent: want a list of HTTP methods, e.g. [PUT, DELETE] (got PUT)`},
		{name: "max below the default initial", keys: "    x-tend:\n      backoff: {max: 100ms}",
			want: `compose.yaml: service "app": x-tend.backoff: initial 500ms is greater than max 100ms`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadService(t, tt.keys)
			wantError(t, err, tt.want)
		})
	}
}

func TestLoadServiceKeys(t *testing.T) {
	tests := []struct {
		name  string
		keys  string
		check func(t *testing.T, s spec.Service)
	}{
		{name: "replicas default 1", keys: "", check: func(t *testing.T, s spec.Service) { diff(t, "replicas", s.Replicas, 1) }},
		{name: "replicas 0", keys: "    deploy: {replicas: 0}", check: func(t *testing.T, s spec.Service) { diff(t, "replicas", s.Replicas, 0) }},
		{name: "scale", keys: "    scale: 4", check: func(t *testing.T, s spec.Service) { diff(t, "replicas", s.Replicas, 4) }},
		{name: "command unset keeps the image's", keys: "", check: func(t *testing.T, s spec.Service) {
			diff(t, "command", s.Command, []string(nil))
			diff(t, "entrypoint", s.Entrypoint, []string(nil))
		}},
		{name: "shell-form command is split", keys: `    command: echo "hello world"`, check: func(t *testing.T, s spec.Service) {
			diff(t, "command", s.Command, []string{"echo", "hello world"})
		}},
		{name: "bare string healthcheck is CMD-SHELL", keys: "    healthcheck:\n      test: curl -f localhost", check: func(t *testing.T, s spec.Service) {
			diff(t, "healthcheck", s.Healthcheck, &spec.Healthcheck{Test: []string{"CMD-SHELL", "curl -f localhost"}})
		}},
		{name: "healthcheck NONE is disabled", keys: "    healthcheck:\n      test: [NONE]", check: func(t *testing.T, s spec.Service) {
			diff(t, "healthcheck", s.Healthcheck, &spec.Healthcheck{Disable: true})
		}},
		{name: "expanded port range", keys: `    ports: ["8000-8001:80-81"]`, check: func(t *testing.T, s spec.Service) {
			diff(t, "ports", s.Ports, []spec.Port{{HostPort: 8000, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 8001, ContainerPort: 81, Protocol: "tcp"}})
		}},
		{name: "host port range", keys: `    ports: ["8000-8010:80", "9000-9002:53/udp"]`, check: func(t *testing.T, s spec.Service) {
			diff(t, "ports", s.Ports, []spec.Port{{HostPort: 8000, HostPortEnd: 8010, ContainerPort: 80, Protocol: "tcp"},
				{HostPort: 9000, HostPortEnd: 9002, ContainerPort: 53, Protocol: "udp"}})
		}},
		{name: "network_mode host joins no network of tend's", keys: "    network_mode: host", check: func(t *testing.T, s spec.Service) {
			diff(t, "networks", s.Networks, []spec.NetworkAttach(nil))
			diff(t, "network_mode", s.NetworkMode, "host")
		}},
		{name: "network_mode service: depends on its owner, without restart", keys: "    network_mode: service:other", check: func(t *testing.T, s spec.Service) {
			diff(t, "network_mode", s.NetworkMode, "service:other")
			diff(t, "depends_on", s.DependsOn, []spec.Dependency{{Service: "other", Condition: spec.ServiceStarted, Required: true}})
		}},
		{name: "z and Z relabel binds", keys: "    volumes: [\"/srv/a:/a:z\", \"/srv/b:/b:ro,Z\", \"/srv/c:/c\"]", check: func(t *testing.T, s spec.Service) {
			diff(t, "mounts", s.Mounts, []spec.Mount{{Type: spec.MountBind, Source: "/srv/a", Target: "/a", SELinux: "z"},
				{Type: spec.MountBind, Source: "/srv/b", Target: "/b", ReadOnly: true, SELinux: "Z"},
				{Type: spec.MountBind, Source: "/srv/c", Target: "/c"}})
		}},
		{name: "tmpfs volume is a tmpfs, not a mount", keys: "    volumes:\n      - type: tmpfs\n        target: /tmp", check: func(t *testing.T, s spec.Service) {
			diff(t, "mounts", s.Mounts, []spec.Mount(nil))
			diff(t, "tmpfs", s.Tmpfs, []spec.Tmpfs{{Target: "/tmp"}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadService(t, tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func wantError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
}

// A job others wait on to complete runs once: tend's default (restart on any exit)
// would run it again after it completed.
func TestLoadOneShotJobs(t *testing.T) {
	tests := []struct {
		name    string
		job     string // keys of the job's service
		want    spec.Condition
		warning string
	}{
		{name: "no restart key: on-failure", job: "", want: spec.RestartOnFailure},
		{name: "restart no is kept", job: `    restart: "no"`, want: spec.RestartNone},
		{name: "deploy condition none is kept", job: "    deploy:\n      restart_policy: {condition: none}", want: spec.RestartNone},
		{name: "restart always is kept, with a warning", job: "    restart: always", want: spec.RestartAny,
			warning: `compose.yaml: service "migrate": restart: app waits for this service to complete (service_completed_successfully), but it restarts on any exit, so it runs again after completing; restart: on-failure runs it once`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeCompose(t, "p", "services:\n  app:\n    image: app:1\n    depends_on:\n      migrate: {condition: service_completed_successfully}\n  migrate:\n    image: app:1\n"+tt.job+"\n")
			p, warnings, err := Load(context.Background(), LoadOptions{WorkingDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			job, _ := p.Service("migrate")
			app, _ := p.Service("app")
			diff(t, "job's restart", job.Restart.Condition, tt.want)
			diff(t, "the waiting service's restart", app.Restart.Condition, spec.RestartAny)
			var got []string
			for _, w := range warnings {
				got = append(got, w.String())
			}
			var want []string
			if tt.warning != "" {
				want = []string{tt.warning}
			}
			diff(t, "warnings", got, want)
		})
	}
}

func TestLoadNetworkModeWithNetworks(t *testing.T) {
	_, err := loadService(t, "    network_mode: host\n    networks: [default]")
	wantError(t, err, `compose.yaml: service "app": network_mode: "host" cannot be combined with networks: a container in another network mode joins no network of its own; keep one of the two`)
}

// network_mode: bridge (or default) is the engine's default bridge, which tend
// never uses: the service runs on the project's default network, with a warning.
func TestLoadNetworkModeBridge(t *testing.T) {
	for _, mode := range []string{"bridge", "default"} {
		dir := writeCompose(t, "p", "services:\n  app:\n    image: app:1\n    network_mode: "+mode+"\n    ports: [\"8080:80\"]\n")
		p, warnings, err := Load(context.Background(), LoadOptions{WorkingDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		app, _ := p.Service("app")
		diff(t, mode+" networks", app.Networks, []spec.NetworkAttach{{Network: "default"}})
		diff(t, mode+" network_mode", app.NetworkMode, "")
		diff(t, mode+" ports", len(app.Ports), 1)
		diff(t, mode+" network", p.Network("default") != nil, true)
		var got []string
		for _, w := range warnings {
			got = append(got, w.String())
		}
		diff(t, mode+" warnings", got, []string{`compose.yaml: service "app": network_mode: "` + mode + `": the service joins the project's default network instead (tend never uses the engine's default bridge)`})
	}
	_, err := loadService(t, "    network_mode: bridge\n    networks: [default]")
	wantError(t, err, `compose.yaml: service "app": network_mode: "bridge" cannot be combined with networks: a container in another network mode joins no network of its own; keep one of the two`)
}

// network_mode container:NAME where NAME is a container_name of the stack is that
// service's network: service:SERVICE, started after it. Another container stays as written.
func TestLoadNetworkModeContainer(t *testing.T) {
	dir := writeCompose(t, "p", `services:
  web: {image: web:1, container_name: anchor}
  side: {image: side:1, network_mode: "container:anchor"}
  other: {image: side:1, network_mode: "container:elsewhere"}
`)
	p, _, err := Load(context.Background(), LoadOptions{WorkingDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	side, _ := p.Service("side")
	other, _ := p.Service("other")
	diff(t, "side", side.NetworkMode, "service:web")
	diff(t, "side's dependency", side.DependsOn, []spec.Dependency{{Service: "web", Condition: spec.ServiceStarted, Required: true}})
	diff(t, "other", other.NetworkMode, "container:elsewhere")
}

func TestLoadFixedAddresses(t *testing.T) {
	load := func(replicas int, addr string) (*spec.Project, error) {
		dir := writeCompose(t, "p", fmt.Sprintf(`services:
  dns:
    image: dns:1
    deploy: {replicas: %d}
    networks:
      back: {ipv4_address: %s}
networks:
  back:
    ipam:
      driver: default
      config: [{subnet: 172.28.0.0/16, gateway: 172.28.0.1, ip_range: 172.28.5.0/24}]
`, replicas, addr))
		p, _, err := Load(context.Background(), LoadOptions{WorkingDir: dir})
		return p, err
	}
	p, err := load(1, "172.28.0.10")
	if err != nil {
		t.Fatal(err)
	}
	dns, _ := p.Service("dns")
	diff(t, "attachment", dns.Networks, []spec.NetworkAttach{{Network: "back", IPv4Address: "172.28.0.10"}})
	diff(t, "ipam", p.Network("back").IPAM, &spec.IPAM{Driver: "default", Pools: []spec.IPAMPool{{Subnet: "172.28.0.0/16", Gateway: "172.28.0.1", IPRange: "172.28.5.0/24"}}})
	diff(t, "stop-first", dns.StopFirst(), true)
	_, err = load(2, "172.28.0.10")
	wantError(t, err, `compose.yaml: service "dns": networks.back: the fixed address 172.28.0.10 fits one container, but the service has 2 replicas`)
	_, err = load(1, "10.0.0.10")
	wantError(t, err, `compose.yaml: service "dns": networks.back: the fixed address 10.0.0.10 is in no subnet of network "back"; give the network one under ipam.config`)
}
