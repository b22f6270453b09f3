package spec

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidateOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"all valid", Options{
			User: "1000:1000", WorkingDir: "/srv", Hostname: "web_1.internal", ReadOnly: true, Init: true,
			CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"},
			ExtraHosts: []ExtraHost{{Host: "db.local", IP: "10.0.0.2"}, {Host: "gw", IP: HostGateway}, {Host: "v6", IP: "::1"}},
			DNS:        []string{"1.1.1.1", "2606:4700:4700::1111"},
			Tmpfs:      []Tmpfs{{Target: "/run"}, {Target: "/tmp", Options: "size=64m,mode=1777,noexec"}},
			Secrets:    []FileMount{{Name: "token", Source: "/etc/app/token", Target: "/run/secrets/token"}},
			Configs:    []FileMount{{Name: "conf", Source: "/etc/app/conf", Target: "/conf"}},
			Ulimits:    []Ulimit{{Name: "memlock", Soft: -1, Hard: -1}, {Name: "nofile", Soft: 1024, Hard: 2048}},
			Limits:     Limits{CPUs: 0.5, Memory: 64 << 20, Pids: 100},
			Logging:    &Logging{Driver: "json-file", Options: map[string]string{"max-size": "10m"}},
		}, ""},
		{"relative working_dir", Options{WorkingDir: "srv"},
			`service "web": working_dir: must be an absolute path (got "srv")`},
		{"user with a space", Options{User: "web user"},
			`service "web": user: must be a user name or id, optionally with :group (got "web user")`},
		{"hostname too long", Options{Hostname: strings.Repeat("a", 65)},
			`service "web": hostname: invalid hostname "` + strings.Repeat("a", 65) + `": want at most 64 letters, digits, dashes, dots and underscores, starting with a letter, digit or underscore`},
		{"hostname with a space", Options{Hostname: "my web"},
			`service "web": hostname: invalid hostname "my web": want at most 64 letters, digits, dashes, dots and underscores, starting with a letter, digit or underscore`},
		{"capability", Options{CapAdd: []string{"NET ADMIN"}},
			`service "web": cap_add: invalid capability "NET ADMIN": want a name such as NET_ADMIN or ALL`},
		{"empty capability", Options{CapDrop: []string{""}},
			`service "web": cap_drop: invalid capability "": want a name such as NET_ADMIN or ALL`},
		{"extra host address", Options{ExtraHosts: []ExtraHost{{Host: "db", IP: "10.0.0"}}},
			`service "web": extra_hosts: db: "10.0.0" is not an IP address or host-gateway`},
		{"extra host name", Options{ExtraHosts: []ExtraHost{{Host: "", IP: "10.0.0.1"}}},
			`service "web": extra_hosts: invalid host name ""`},
		{"dns", Options{DNS: []string{"dns.google"}},
			`service "web": dns: "dns.google" is not an IP address`},
		{"tmpfs relative", Options{Tmpfs: []Tmpfs{{Target: "tmp"}}},
			`service "web": tmpfs: target "tmp" is not an absolute path`},
		{"tmpfs mode", Options{Tmpfs: []Tmpfs{{Target: "/tmp", Options: "mode=rwx"}}},
			`service "web": tmpfs: /tmp: mode must be octal, such as 1777 (got "rwx")`},
		{"tmpfs empty option", Options{Tmpfs: []Tmpfs{{Target: "/tmp", Options: "size=1m,,noexec"}}},
			`service "web": tmpfs: /tmp: invalid option "" in "size=1m,,noexec"`},
		{"tmpfs over a volume", Options{Tmpfs: []Tmpfs{{Target: "/cache"}}},
			`service "web": tmpfs: /cache is already mounted by volumes`},
		{"secret over a tmpfs", Options{Tmpfs: []Tmpfs{{Target: "/run/secrets"}}, Secrets: []FileMount{{Name: "a", Source: "/a", Target: "/run/secrets"}}},
			`service "web": secrets: /run/secrets is already mounted by tmpfs`},
		{"two configs at one target", Options{Configs: []FileMount{{Name: "a", Source: "/a", Target: "/c"}, {Name: "b", Source: "/b", Target: "/c"}}},
			`service "web": configs: /c is already mounted by configs`},
		{"secret relative source", Options{Secrets: []FileMount{{Name: "a", Source: "a", Target: "/run/secrets/a"}}},
			`service "web": secrets: "a": source "a" is not an absolute path`},
		{"config relative target", Options{Configs: []FileMount{{Name: "a", Source: "/a", Target: "a"}}},
			`service "web": configs: "a": target "a" is not an absolute path`},
		{"unknown ulimit", Options{Ulimits: []Ulimit{{Name: "nofiles", Soft: 1, Hard: 1}}},
			`service "web": ulimits: unknown limit "nofiles" (known: core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)`},
		{"soft above hard", Options{Ulimits: []Ulimit{{Name: "nofile", Soft: 2048, Hard: 1024}}},
			`service "web": ulimits.nofile: soft limit 2048 is greater than hard limit 1024`},
		{"unlimited soft, limited hard", Options{Ulimits: []Ulimit{{Name: "nofile", Soft: -1, Hard: 1024}}},
			`service "web": ulimits.nofile: soft limit -1 (unlimited) is greater than hard limit 1024`},
		{"negative ulimit", Options{Ulimits: []Ulimit{{Name: "nproc", Soft: -2, Hard: 10}}},
			`service "web": ulimits.nproc: soft and hard must be 0 or more, or -1 for unlimited (got -2 and 10)`},
		{"ulimit twice", Options{Ulimits: []Ulimit{{Name: "nofile", Soft: 1, Hard: 1}, {Name: "nofile", Soft: 2, Hard: 2}}},
			`service "web": ulimits.nofile: listed twice or out of order (want sorted by name)`},
		{"negative memory", Options{Limits: Limits{Memory: -1}},
			`service "web": deploy.resources.limits.memory: must not be negative (got -1B)`},
		{"memory below the engine's minimum", Options{Limits: Limits{Memory: 1 << 20}},
			`service "web": deploy.resources.limits.memory: must be at least 6MiB, the engine's minimum (got 1MiB)`},
		{"negative cpus", Options{Limits: Limits{CPUs: -0.5}},
			`service "web": deploy.resources.limits.cpus: must be a positive number of CPUs (got -0.5)`},
		{"NaN cpus", Options{Limits: Limits{CPUs: math.NaN()}},
			`service "web": deploy.resources.limits.cpus: must be a positive number of CPUs (got NaN)`},
		{"pids", Options{Limits: Limits{Pids: -2}},
			`service "web": deploy.resources.limits.pids: must be 0 or more, or -1 for unlimited (got -2)`},
		{"log driver", Options{Logging: &Logging{Driver: "json file"}},
			`service "web": logging.driver: invalid driver name "json file"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validProject()
			web := &p.Services[1]
			web.Mounts = []Mount{{Type: MountVolume, Target: "/cache"}}
			web.Options = tt.opts
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

// TestHashOfPlainServiceIsStable pins the hash of a service that sets none of the
// Options: were it to change, upgrading tend would replace every replica of every
// stack although nothing in them changed.
func TestHashOfPlainServiceIsStable(t *testing.T) {
	s := Service{
		Name: "web", Image: "web:1",
		Ports:       []Port{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		Networks:    []NetworkAttach{{Network: "default"}},
		Mounts:      []Mount{{Type: MountBind, Source: "/x", Target: "/y", ReadOnly: true}},
		Healthcheck: &Healthcheck{Test: []string{"CMD", "/probe"}, Interval: time.Second},
		Replicas:    2,
		Restart:     RestartPolicy{Condition: RestartAny},
		DependsOn:   []Dependency{{Service: "db", Condition: ServiceHealthy, Required: true}},
	}
	diff(t, "hash", s.Hash(), "5021bce997af0cfe")
}

func TestHashOptions(t *testing.T) {
	base := validProject().Services[1]
	for name, change := range map[string]func(o *Options){
		"user":        func(o *Options) { o.User = "1000" },
		"working_dir": func(o *Options) { o.WorkingDir = "/srv" },
		"hostname":    func(o *Options) { o.Hostname = "web" },
		"read_only":   func(o *Options) { o.ReadOnly = true },
		"init":        func(o *Options) { o.Init = true },
		"cap_add":     func(o *Options) { o.CapAdd = []string{"NET_ADMIN"} },
		"cap_drop":    func(o *Options) { o.CapDrop = []string{"ALL"} },
		"extra_hosts": func(o *Options) { o.ExtraHosts = []ExtraHost{{Host: "a", IP: "10.0.0.1"}} },
		"dns":         func(o *Options) { o.DNS = []string{"1.1.1.1"} },
		"tmpfs":       func(o *Options) { o.Tmpfs = []Tmpfs{{Target: "/tmp"}} },
		"secrets":     func(o *Options) { o.Secrets = []FileMount{{Name: "a", Source: "/a", Target: "/run/secrets/a"}} },
		"configs":     func(o *Options) { o.Configs = []FileMount{{Name: "a", Source: "/a", Target: "/a"}} },
		"ulimits":     func(o *Options) { o.Ulimits = []Ulimit{{Name: "nofile", Soft: 1, Hard: 1}} },
		"cpus":        func(o *Options) { o.Limits.CPUs = 1 },
		"memory":      func(o *Options) { o.Limits.Memory = 64 << 20 },
		"logging":     func(o *Options) { o.Logging = &Logging{Driver: "local"} },
	} {
		s := base
		change(&s.Options)
		if s.Hash() == base.Hash() {
			t.Errorf("changing %s keeps the hash: its replicas would not be replaced", name)
		}
	}
}

// TestOptionsInlineInJSON checks the API shape: Options' fields sit in the service
// object itself, not under a key of their own.
func TestOptionsInlineInJSON(t *testing.T) {
	s := Service{Name: "web", Options: Options{User: "1000", Limits: Limits{Memory: 64 << 20}}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"user":"1000"`, `"limits":{"memory":67108864}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), "Options") {
		t.Errorf("JSON %s nests the options", b)
	}
	var back Service
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	diff(t, "round trip", back.Options, s.Options)
}

func TestBytesString(t *testing.T) {
	for b, want := range map[Bytes]string{0: "0B", 1000: "1000B", 1536: "1536B", 3072: "3KiB",
		64 << 20: "64MiB", 1 << 30: "1GiB", 1536 << 20: "1536MiB", -1: "-1B"} {
		diff(t, "Bytes", b.String(), want)
	}
}
