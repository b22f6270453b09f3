package spec

import (
	"testing"
	"time"
)

// validProject is a small valid Project that test cases break one way each.
func validProject() *Project {
	return &Project{
		Name: "shop",
		Services: []Service{
			{
				Name: "db", Image: "postgres:16",
				Mounts:      []Mount{{Type: MountVolume, Source: "pgdata", Target: "/data"}},
				Networks:    []NetworkAttach{{Network: "default"}},
				Healthcheck: &Healthcheck{Test: []string{"CMD", "/probe"}},
				Replicas:    1,
				Restart:     RestartPolicy{Condition: RestartAny},
				Tend:        defaultExtension,
			},
			{
				Name: "web", Image: "web:1",
				Ports:     []Port{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
				Networks:  []NetworkAttach{{Network: "default"}},
				Replicas:  2,
				Restart:   RestartPolicy{Condition: RestartAny},
				DependsOn: []Dependency{{Service: "db", Condition: ServiceHealthy, Required: true}},
				Tend:      defaultExtension,
			},
		},
		Networks: []Network{{Key: "default", Name: "shop_default"}},
		Volumes:  []Volume{{Key: "pgdata", Name: "shop_pgdata"}},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *Project)
		want   string
	}{
		{"valid", func(*Project) {}, ""},
		{"container_name of one replica", func(p *Project) { p.Services[0].ContainerName = "my-db" }, ""},
		{"container_name with replicas", func(p *Project) { p.Services[1].ContainerName = "web" },
			`service "web": container_name: "web" names one container, but the service has 2 replicas; remove container_name or run one replica`},
		{"container_name twice", func(p *Project) {
			p.Services[0].ContainerName, p.Services[1].ContainerName, p.Services[1].Replicas = "x1", "x1", 1
		}, `service "db": container_name: "x1" is also the container_name of service "web"`},
		{"bad container_name", func(p *Project) { p.Services[0].ContainerName = "-db" },
			`service "db": container_name: "-db" is not a valid container name (want letters, digits, _ . -, starting with a letter or digit)`},
		{"selinux on a volume", func(p *Project) { p.Services[0].Mounts[0].SELinux = "z" },
			`service "db": volumes: selinux "z" at /data: want z or Z, on a bind mount`},
		{"negative replicas", func(p *Project) { p.Services[1].Replicas = -1 },
			`service "web": deploy.replicas: must be 0 or more (got -1)`},
		{"empty image", func(p *Project) { p.Services[0].Image = "" },
			`service "db": image: required`},
		{"duplicate service", func(p *Project) { p.Services[1].Name = "db" },
			`service "db": duplicate or out of order (want services sorted by name)`},
		{"unsorted services", func(p *Project) { p.Services[0], p.Services[1] = p.Services[1], p.Services[0] },
			`service "db": duplicate or out of order (want services sorted by name)`},
		{"undeclared volume", func(p *Project) { p.Volumes = nil },
			`service "db": volumes: volume "pgdata" is not declared under top-level volumes`},
		{"undeclared network", func(p *Project) { p.Services[1].Networks = []NetworkAttach{{Network: "front"}} },
			`service "web": networks: network "front" is not declared under top-level networks`},
		{"no network", func(p *Project) { p.Services[1].Networks = nil },
			`service "web": networks: a service must join at least one network`},
		{"bad project name", func(p *Project) { p.Name = "Shop" },
			`name: invalid project name "Shop": want lowercase letters, digits, dashes and underscores, starting with a letter or digit`},
		{"bad service name", func(p *Project) { p.Services[0].Name = "d b" },
			`services: invalid service name "d b": want letters, digits, dots, dashes and underscores`},
		{"unknown condition", func(p *Project) { p.Services[1].Restart.Condition = "sometimes" },
			`service "web": deploy.restart_policy.condition: must be one of any, on-failure, none (got "sometimes")`},
		{"unknown dependency", func(p *Project) { p.Services[1].DependsOn[0].Service = "cache" },
			`service "web": depends_on: unknown service "cache"`},
		{"healthy without healthcheck in the file: the image's counts", func(p *Project) { p.Services[0].Healthcheck = nil }, ""},
		{"healthy with disabled healthcheck", func(p *Project) { p.Services[0].Healthcheck = &Healthcheck{Disable: true} },
			`service "web": depends_on: condition service_healthy needs a health check on service "db", whose healthcheck is disabled`},
		{"self dependency", func(p *Project) {
			p.Services[0].DependsOn = []Dependency{{Service: "db", Condition: ServiceStarted}}
		}, `service "db": depends_on: dependency cycle: db -> db`},
		{"cycle", func(p *Project) {
			p.Services[0].DependsOn = []Dependency{{Service: "web", Condition: ServiceStarted}}
		}, `service "db": depends_on: dependency cycle: db -> web -> db`},
		{"zero backoff", func(p *Project) { p.Services[0].Tend = Extension{} },
			`service "db": x-tend.backoff.initial: must be positive (got 0s)`},
		{"initial above max", func(p *Project) { p.Services[0].Tend.Backoff.Initial = 2 * time.Minute },
			`service "db": x-tend.backoff: initial 2m0s is greater than max 1m0s`},
		{"container port 0", func(p *Project) { p.Services[1].Ports[0].ContainerPort = 0 },
			`service "web": ports: container port 0 is out of range 1-65535`},
		{"bad protocol", func(p *Project) { p.Services[1].Ports[0].Protocol = "" },
			`service "web": ports: protocol "" is not supported (want tcp, udp or sctp)`},
		{"port published twice", func(p *Project) {
			p.Services[0].Ports = []Port{{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 5432, Protocol: "tcp"}}
		}, `service "web": ports: host port 8080/tcp is already published by service "db"`},
		{"relative bind", func(p *Project) { p.Services[0].Mounts[0] = Mount{Type: MountBind, Source: "data", Target: "/data"} },
			`service "db": volumes: bind source "data" is not an absolute path`},
		{"two mounts at one target", func(p *Project) {
			p.Services[0].Mounts = append(p.Services[0].Mounts, Mount{Type: MountVolume, Target: "/data"})
		}, `service "db": volumes: two mounts at /data`},
		{"duplicate network", func(p *Project) { p.Networks = append(p.Networks, p.Networks[0]) },
			`networks.default: duplicate or out of order (want sorted by key)`},
		{"volume without engine name", func(p *Project) { p.Volumes[0].Name = "" },
			`volumes.pgdata: engine name is empty`},
		{"healthcheck test", func(p *Project) { p.Services[0].Healthcheck.Test = []string{"CMD"} },
			`service "db": healthcheck.test: CMD needs a command`},
		{"negative max attempts", func(p *Project) { p.Services[0].Restart.MaxAttempts = -1 },
			`service "db": deploy.restart_policy.max_attempts: must be 0 or more (got -1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validProject()
			tt.mutate(p)
			err := Validate(p)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			wantError(t, err, tt.want)
		})
	}
}

func TestHash(t *testing.T) {
	base := validProject().Services[1]
	tests := []struct {
		name    string
		change  func(s *Service)
		changes bool
	}{
		{"image", func(s *Service) { s.Image = "web:2" }, true},
		{"environment", func(s *Service) { s.Environment = map[string]string{"A": "b"} }, true},
		{"command", func(s *Service) { s.Command = []string{"/app", "-v"} }, true},
		{"replicas", func(s *Service) { s.Replicas = 7 }, false},
		{"restart policy", func(s *Service) { s.Restart.Condition = RestartNone }, false},
		{"dependencies", func(s *Service) { s.DependsOn = nil }, false},
		{"x-tend", func(s *Service) { s.Tend.Backoff.Max = time.Hour }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base // the changes replace fields, so sharing slices with base is safe
			tt.change(&s)
			if changed := s.Hash() != base.Hash(); changed != tt.changes {
				t.Errorf("hash changed = %v, want %v", changed, tt.changes)
			}
		})
	}
}

// defaultExtension is what a service without x-tend gets.
var defaultExtension = Extension{Backoff: Backoff{
	Initial: DefaultBackoffInitial, Max: DefaultBackoffMax, ResetAfter: DefaultBackoffResetAfter,
}}

func wantError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
}
