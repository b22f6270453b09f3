package compose

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// corpusCase is one realistic stack under testdata/corpus: the files it is loaded
// with, the warnings it must give (without the file name) and a few facts that
// show its keys were understood.
type corpusCase struct {
	dir      string
	files    []string // default: compose.yaml
	profiles []string
	services []string // tend up SERVICE...: load only these and their dependencies
	environ  []string
	warnings []string
	check    func(t *testing.T, p *spec.Project)
}

var corpus = []corpusCase{
	{dir: "image-healthcheck", environ: []string{"DB_PASSWORD=corpus-db"}, check: func(t *testing.T, p *spec.Project) {
		// the image's HEALTHCHECK is judged once the image is known (supervisor)
		diff(t, "db's file health check", service(t, p, "db").Healthcheck == nil, true)
		diff(t, "mta waits for", service(t, p, "mta").DependsOn, []spec.Dependency{{Service: "db", Condition: spec.ServiceHealthy, Required: true}})
		diff(t, "webmail restarts with db", service(t, p, "webmail").DependsOn[0], spec.Dependency{Service: "db", Condition: spec.ServiceHealthy, Restart: true, Required: true})
	}},
	{dir: "legacy-bridge", warnings: []string{
		`service "app": network_mode: "bridge": the service joins the project's default network instead (tend never uses the engine's default bridge)`,
		`service "cache": network_mode: "default": the service joins the project's default network instead (tend never uses the engine's default bridge)`,
	}, check: func(t *testing.T, p *spec.Project) {
		for _, name := range []string{"app", "cache"} {
			diff(t, name+" networks", service(t, p, name).Networks, []spec.NetworkAttach{{Network: "default"}})
		}
		diff(t, "app's port", service(t, p, "app").Ports[0].HostPort, uint16(8000))
	}},
	{dir: "vpn-sidecar", check: func(t *testing.T, p *spec.Project) {
		diff(t, "vpn's name", service(t, p, "vpn").ContainerName, "vpn")
		dl := service(t, p, "downloader")
		diff(t, "by container name", dl.NetworkMode, "service:vpn")
		diff(t, "downloader starts after vpn", dl.DependsOn[0].Service, "vpn")
		diff(t, "relabelled", dl.Mounts[0].SELinux, "z")
		diff(t, "by service", service(t, p, "exporter").NetworkMode, "service:vpn")
		diff(t, "another container", service(t, p, "probe").NetworkMode, "container:some-host-container")
	}},
	{dir: "dual-stack", check: func(t *testing.T, p *spec.Project) {
		diff(t, "resolver", service(t, p, "resolver").Networks, []spec.NetworkAttach{{Network: "edge", IPv4Address: "10.77.0.53", IPv6Address: "fd00:77::53"}})
		diff(t, "ipv6", p.Network("edge").IPv6, true)
		diff(t, "subnets", len(p.Network("edge").IPAM.Pools), 2)
		diff(t, "dns", service(t, p, "app").Options.DNS, []string{"10.77.0.53", "fd00:77::53"})
	}},
	{dir: "metrics-udp", check: func(t *testing.T, p *spec.Project) {
		c := service(t, p, "collector").Ports[0]
		diff(t, "udp range", fmt.Sprintf("%d-%d/%s", c.HostPort, c.HostPortEnd, c.Protocol), "8125-8127/udp")
		diff(t, "sctp", service(t, p, "signalling").Ports[0].Protocol, "sctp")
		a := service(t, p, "api").Ports[0]
		diff(t, "tcp range", fmt.Sprintf("%s:%d-%d", a.HostIP, a.HostPort, a.HostPortEnd), "127.0.0.1:9100-9105")
	}},
	{dir: "config-environment", environ: []string{"APP_DOCKERFILE=", `FEATURE_FLAGS={"beta": true}`}, check: func(t *testing.T, p *spec.Project) {
		app := service(t, p, "app")
		diff(t, "empty dockerfile", app.Build.Dockerfile, "Dockerfile")
		diff(t, "config from the environment", string(app.Configs[0].Content)+" "+app.Configs[0].From, `{"beta": true} environment FEATURE_FLAGS`)
		diff(t, "multi-line inline config", string(app.Configs[1].Content), "\nwelcome\n  to the app\n")
	}},
	{dir: "seed-job", warnings: []string{
		`service "seed": restart: api waits for this service to complete (service_completed_successfully), but it restarts on any exit, so it runs again after completing; restart: on-failure runs it once`,
	}, check: func(t *testing.T, p *spec.Project) {
		diff(t, "the file's restart: always is kept", service(t, p, "seed").Restart.Condition, spec.RestartAny)
	}},
	{dir: "menu", services: []string{"nginx"}, check: func(t *testing.T, p *spec.Project) {
		diff(t, "services", names(p), []string{"mysql", "nginx", "php"})
		diff(t, "relabelled bind", service(t, p, "nginx").Mounts[0].SELinux, "z")
		diff(t, "container_name", service(t, p, "php").ContainerName, "dev-php")
		diff(t, "port range", service(t, p, "mysql").Ports[0].HostPortEnd, uint16(3310))
	}},
	{dir: "menu", services: []string{"apache", "mailhog"}, check: func(t *testing.T, p *spec.Project) {
		diff(t, "services", names(p), []string{"apache", "mailhog", "mysql", "php"})
		diff(t, "relabelled bind", service(t, p, "apache").Mounts[0].SELinux, "Z")
	}},
	{dir: "host-network", warnings: []string{
		`service "node-exporter": ports: ignored with network_mode: host (the container listens on the host's ports itself; tend's proxy does not front them)`,
	}, check: func(t *testing.T, p *spec.Project) {
		diff(t, "sidecar", service(t, p, "tailer").NetworkMode, "service:app")
		diff(t, "sidecar waits for its network's owner", service(t, p, "tailer").DependsOn[0].Service, "app")
		exporter := service(t, p, "node-exporter")
		diff(t, "host", exporter.NetworkMode+" "+fmt.Sprint(exporter.StopFirst()), "host true")
		diff(t, "none", len(service(t, p, "offline").Networks), 0)
	}},
	{dir: "fixed-address", check: func(t *testing.T, p *spec.Project) {
		diff(t, "fixed address", service(t, p, "unbound").Networks[0].IPv4Address, "172.22.1.254")
		diff(t, "subnet", p.Networks[0].IPAM.Pools[0].Subnet, "172.22.1.0/24")
	}},
	{dir: "init-job", check: func(t *testing.T, p *spec.Project) {
		diff(t, "the job runs once", service(t, p, "init").Restart.Condition, spec.RestartOnFailure)
		diff(t, "the others keep tend's default", service(t, p, "worker").Restart.Condition, spec.RestartAny)
	}},
	{dir: "values", environ: []string{"API_TOKEN=corpus-token"}, check: func(t *testing.T, p *spec.Project) {
		api, proxy := service(t, p, "api"), service(t, p, "proxy")
		diff(t, "secret from the environment", string(api.Secrets[0].Content)+" "+api.Secrets[0].From, "corpus-token environment API_TOKEN")
		diff(t, "inline config", string(proxy.Configs[0].Content)+" "+proxy.Configs[0].Target, "server { listen 80; }\n /etc/nginx/conf.d/site.conf")
	}},
	{dir: "wordpress", check: func(t *testing.T, p *spec.Project) {
		db, wp := service(t, p, "db"), service(t, p, "wordpress")
		diff(t, "db secrets", targets(db.Secrets), []string{"/run/secrets/db_root_password", "/run/secrets/db_password"})
		diff(t, "wordpress secrets", targets(wp.Secrets), []string{"/run/secrets/db_password"})
		diff(t, "wordpress waits for", wp.DependsOn[0].Condition, spec.ServiceHealthy)
		diff(t, "db command", db.Command, []string{"--default-authentication-plugin=mysql_native_password"})
	}},
	{dir: "django", environ: []string{"TAG=4.2.1"}, check: func(t *testing.T, p *spec.Project) {
		diff(t, "name", p.Name, "shop")
		for _, name := range []string{"web", "worker", "beat"} {
			s := service(t, p, name)
			diff(t, name+" image", s.Image, "registry.example.com/shop/web:4.2.1")
			diff(t, name+" env_file", s.Environment["DJANGO_SETTINGS_MODULE"], "shop.settings.production")
			diff(t, name+" depends on", len(s.DependsOn), 2)
		}
		diff(t, "worker replicas", service(t, p, "worker").Replicas, 2)
		diff(t, "web port", service(t, p, "web").Ports[0].HostIP, "127.0.0.1")
	}},
	{dir: "rails", check: func(t *testing.T, p *spec.Project) {
		app, sidekiq := service(t, p, "app"), service(t, p, "sidekiq")
		diff(t, "working_dir", app.WorkingDir, "/rails")
		diff(t, "user", sidekiq.User, "1000:1000")
		diff(t, "shared environment", sidekiq.Environment["REDIS_URL"], "redis://redis:6379/1")
		diff(t, "shell-form command", app.Command, []string{"bundle", "exec", "puma", "-C", "config/puma.rb"})
		diff(t, "sidekiq stop_grace_period", sidekiq.StopGracePeriod, 30*time.Second)
	}},
	{dir: "node-mongo", check: func(t *testing.T, p *spec.Project) {
		api, mongo := service(t, p, "api"), service(t, p, "mongo")
		diff(t, "tmpfs", api.Tmpfs, []spec.Tmpfs{{Target: "/tmp/uploads", Options: "size=32m"}})
		diff(t, "env_file and list environment", api.Environment["PORT"]+" "+api.Environment["NODE_ENV"], "3000 production")
		diff(t, "ulimits", mongo.Ulimits, []spec.Ulimit{{Name: "nofile", Soft: 64000, Hard: 64000}})
		diff(t, "read-only bind", api.Mounts[0].ReadOnly, true)
	}},
	{dir: "nginx-proxy", check: func(t *testing.T, p *spec.Project) {
		proxy := service(t, p, "proxy")
		diff(t, "configs", targets(proxy.Configs), []string{"/etc/nginx/nginx.conf", "/etc/nginx/conf.d/default.conf"})
		diff(t, "secrets", targets(proxy.Secrets), []string{"/etc/nginx/tls/cert.pem", "/etc/nginx/tls/key.pem"})
		diff(t, "read_only", proxy.ReadOnly, true)
		diff(t, "tmpfs", proxy.Tmpfs, []spec.Tmpfs{{Target: "/var/cache/nginx"}, {Target: "/var/run"}})
	}},
	{dir: "rabbitmq-workers", check: func(t *testing.T, p *spec.Project) {
		c := service(t, p, "consumer")
		diff(t, "limits", c.Limits, spec.Limits{CPUs: 0.5, Memory: 256 << 20})
		diff(t, "replicas", c.Replicas, 4)
		diff(t, "restart", c.Restart, spec.RestartPolicy{Condition: spec.RestartOnFailure, Delay: 5 * time.Second, MaxAttempts: 10, Window: 2 * time.Minute})
		diff(t, "hostname", service(t, p, "rabbitmq").Hostname, "rabbitmq")
	}},
	{dir: "kafka", check: func(t *testing.T, p *spec.Project) {
		k := service(t, p, "kafka")
		diff(t, "ulimits", k.Ulimits, []spec.Ulimit{{Name: "nofile", Soft: 100000, Hard: 100000}, {Name: "nproc", Soft: 65535, Hard: 65535}})
		diff(t, "mem_limit", k.Limits.Memory, spec.Bytes(1<<30))
		diff(t, "networks", k.Networks, []spec.NetworkAttach{{Network: "kafka"}})
		diff(t, "numbers in environment", k.Environment["KAFKA_BROKER_ID"], "1")
	}},
	{dir: "profiles", check: func(t *testing.T, p *spec.Project) {
		diff(t, "services", names(p), []string{"app", "db"})
		diff(t, "optional dependency dropped", len(service(t, p, "app").DependsOn), 1)
	}},
	{dir: "profiles", profiles: []string{"debug"}, check: func(t *testing.T, p *spec.Project) {
		diff(t, "services", names(p), []string{"adminer", "app", "db", "mailhog"})
		diff(t, "optional dependency kept", len(service(t, p, "app").DependsOn), 2)
	}},
	{dir: "profiles", profiles: []string{"ci"}, check: func(t *testing.T, p *spec.Project) {
		diff(t, "services", names(p), []string{"app", "db", "tests"})
		diff(t, "one-shot", service(t, p, "tests").Restart.Condition, spec.RestartNone)
	}},
	{dir: "override", files: []string{"compose.yaml", "compose.override.yaml"}, check: func(t *testing.T, p *spec.Project) {
		web := service(t, p, "web")
		diff(t, "overridden and kept environment", web.Environment, map[string]string{"LOG_LEVEL": "debug", "FEATURE_X": "off"})
		diff(t, "overridden replicas", web.Replicas, 1)
		diff(t, "added mount", len(web.Mounts), 1)
		diff(t, "added service", names(p), []string{"db", "mail", "web"})
		diff(t, "added port", service(t, p, "db").Ports[0].HostPort, uint16(5432))
	}},
	{dir: "override", check: func(t *testing.T, p *spec.Project) {
		diff(t, "without the override", service(t, p, "web").Replicas, 3)
		diff(t, "services", names(p), []string{"db", "web"})
	}},
	{dir: "build-override", files: []string{"compose.yaml", "compose.override.yaml"}, check: func(t *testing.T, p *spec.Project) {
		api, worker := service(t, p, "api"), service(t, p, "worker")
		diff(t, "api context", filepath.Base(api.Build.Context), "api")
		diff(t, "api image named after the project", api.Image, p.Name+"-api")
		diff(t, "merged args", api.Build.Args, map[string]string{"VERSION": "1.4", "DEBUG": "1"})
		diff(t, "overridden target", api.Build.Target, "debug")
		diff(t, "labels kept", api.Build.Labels["org.example.team"], "payments")
		diff(t, "worker dockerfile", worker.Build.Dockerfile, "worker/Dockerfile")
		diff(t, "worker image", worker.Image, "example/worker:dev")
		diff(t, "override environment", api.Environment["LOG_LEVEL"], "debug")
	}},
	{dir: "prod-override", files: []string{"compose.yaml", "compose.prod.yaml"}, check: func(t *testing.T, p *spec.Project) {
		api, worker := service(t, p, "api"), service(t, p, "worker")
		diff(t, "image from .env", api.Image, "ghcr.io/acme/api:2.3.0")
		diff(t, "environment", api.Environment["APP_ENV"], "production")
		diff(t, "limits", api.Limits, spec.Limits{CPUs: 1, Memory: 512 << 20})
		diff(t, "logging", api.Logging, &spec.Logging{Driver: "json-file", Options: map[string]string{"max-size": "10m", "max-file": "5"}})
		diff(t, "worker logging", worker.Logging, &spec.Logging{Driver: "local"})
		diff(t, "worker keeps its command", worker.Command, []string{"worker"})
		diff(t, "worker replicas", worker.Replicas, 4)
	}},
	{dir: "extends-same-file", check: func(t *testing.T, p *spec.Project) {
		emails, reports := service(t, p, "emails"), service(t, p, "reports")
		diff(t, "emails environment", emails.Environment, map[string]string{"QUEUE_URL": "redis://queue:6379", "LOG_LEVEL": "debug"})
		diff(t, "reports image", reports.Image, "ghcr.io/acme/jobs:5.2")
		diff(t, "inherited restart", reports.Restart.Condition, spec.RestartOnFailure)
		diff(t, "replicas", []int{service(t, p, "base").Replicas, emails.Replicas, reports.Replicas}, []int{0, 2, 1})
	}},
	{dir: "extends-other-file", check: func(t *testing.T, p *spec.Project) {
		for _, name := range []string{"admin", "api"} {
			s := service(t, p, name)
			diff(t, name+" hardened", s.ReadOnly && s.Init && s.User == "65534:65534", true)
			diff(t, name+" cap_drop", s.CapDrop, []string{"ALL"})
			diff(t, name+" tmpfs", s.Tmpfs, []spec.Tmpfs{{Target: "/tmp"}})
			diff(t, name+" healthcheck", s.Healthcheck.Interval, 30*time.Second)
		}
		diff(t, "own image", service(t, p, "admin").Image, "ghcr.io/acme/admin:4.0")
		diff(t, "merged environment", service(t, p, "admin").Environment, map[string]string{"ADMIN": "1", "TZ": "UTC"})
	}},
	{dir: "healthchecks", check: func(t *testing.T, p *spec.Project) {
		diff(t, "string test", service(t, p, "db").Healthcheck.Test, []string{"CMD-SHELL", "pg_isready -U postgres"})
		diff(t, "start_period", service(t, p, "db").Healthcheck.StartPeriod, 5*time.Second)
		diff(t, "disable", service(t, p, "web").Healthcheck.Disable, true)
		diff(t, "NONE", service(t, p, "legacy").Healthcheck.Disable, true)
		diff(t, "api waits for", len(service(t, p, "api").DependsOn), 2)
	}},
	{dir: "networks", check: func(t *testing.T, p *spec.Project) {
		diff(t, "networks", p.Networks, []spec.Network{
			{Key: "back", Name: "networks_back", Internal: true},
			{Key: "front", Name: "acme-front", Driver: "bridge", Labels: map[string]string{"com.acme.tier": "front"}},
			{Key: "shared", Name: "monitoring", External: true},
		})
		diff(t, "aliases", service(t, p, "app").Networks, []spec.NetworkAttach{{Network: "back", Aliases: []string{"api"}}, {Network: "front", Aliases: []string{"app.internal"}}})
	}},
	{dir: "volumes", check: func(t *testing.T, p *spec.Project) {
		app := service(t, p, "app")
		diff(t, "mount types", mountTypes(app.Mounts), []string{"volume uploads", "volume media ro", "bind ro", "volume", "bind"})
		diff(t, "tmpfs volume", app.Tmpfs, []spec.Tmpfs{{Target: "/run/files", Options: "size=16777216"}})
		diff(t, "external", p.Volumes[0], spec.Volume{Key: "media", Name: "shared-media", External: true})
		diff(t, "driver_opts", p.Volumes[1].DriverOpts["device"], "/mnt/uploads")
	}},
	{dir: "hardened", warnings: []string{`service "api": security_opt: not honoured by tend, ignored`}, check: func(t *testing.T, p *spec.Project) {
		api := service(t, p, "api")
		diff(t, "options", api.Options, spec.Options{
			User: "10001", ReadOnly: true, Init: true, CapAdd: []string{"NET_BIND_SERVICE"}, CapDrop: []string{"ALL"},
			Tmpfs:   []spec.Tmpfs{{Target: "/tmp", Options: "size=64m,mode=1777,noexec,nosuid"}},
			Ulimits: []spec.Ulimit{{Name: "nofile", Soft: 4096, Hard: 8192}, {Name: "nproc", Soft: 512, Hard: 512}},
			Limits:  spec.Limits{CPUs: 0.75, Memory: 384 << 20, Pids: 200},
		})
	}},
	{dir: "logging", check: func(t *testing.T, p *spec.Project) {
		diff(t, "web", service(t, p, "web").Logging.Options["tag"], "{{.Name}}")
		diff(t, "audit", service(t, p, "audit").Logging.Driver, "syslog")
		diff(t, "batch", service(t, p, "batch").Logging, &spec.Logging{Driver: "local", Options: map[string]string{"max-size": "5m"}})
	}},
	{dir: "monitoring", check: func(t *testing.T, p *spec.Project) {
		prom, grafana, exporter := service(t, p, "prometheus"), service(t, p, "grafana"), service(t, p, "exporter")
		diff(t, "extra_hosts", prom.ExtraHosts, []spec.ExtraHost{{Host: "host.docker.internal", IP: spec.HostGateway}})
		diff(t, "config", targets(prom.Configs), []string{"/etc/prometheus/prometheus.yml"})
		diff(t, "secret", targets(grafana.Secrets), []string{"/run/secrets/grafana_admin"})
		diff(t, "dns", exporter.DNS, []string{"1.1.1.1", "9.9.9.9"})
		diff(t, "root bind", exporter.Mounts, []spec.Mount{{Type: spec.MountBind, Source: "/", Target: "/host", ReadOnly: true}})
	}},
	{dir: "migrations", check: func(t *testing.T, p *spec.Project) {
		diff(t, "migrate", service(t, p, "migrate").Restart.Condition, spec.RestartNone)
		diff(t, "seed", service(t, p, "seed").Restart.Condition, spec.RestartNone)
		diff(t, "app waits", service(t, p, "app").DependsOn, []spec.Dependency{
			{Service: "migrate", Condition: spec.ServiceCompletedSuccessfully, Required: true},
			{Service: "seed", Condition: spec.ServiceCompletedSuccessfully},
		})
	}},
	{dir: "interpolation", environ: []string{"WEB_TAG=9.9"},
		check: func(t *testing.T, p *spec.Project) {
			web := service(t, p, "web")
			diff(t, "name default", p.Name, "interp")
			diff(t, "image", web.Image, "registry.example.com/web:9.9")
			diff(t, "required variable", web.Environment["PUBLIC_URL"], "https://shop.example.com/")
			diff(t, "replicas from .env", web.Replicas, 2)
			diff(t, "interpolated mem_limit", service(t, p, "cache").Limits.Memory, spec.Bytes(64<<20))
		}},
	{dir: "search", check: func(t *testing.T, p *spec.Project) {
		es := service(t, p, "elasticsearch")
		diff(t, "unlimited memlock", es.Ulimits[0], spec.Ulimit{Name: "memlock", Soft: -1, Hard: -1})
		diff(t, "mem_limit", es.Limits.Memory, spec.Bytes(2<<30))
		diff(t, "dotted environment", es.Environment["discovery.type"], "single-node")
		diff(t, "entrypoint", service(t, p, "createbuckets").Entrypoint, []string{"/bin/sh", "-c"})
	}},
	{dir: "labels-proxy", check: func(t *testing.T, p *spec.Project) {
		diff(t, "map labels", service(t, p, "whoami").Labels["traefik.http.routers.whoami.rule"], "Host(`whoami.localhost`)")
		diff(t, "list labels", service(t, p, "blog").Labels["traefik.enable"], "true")
	}},
	{dir: "worker-pool", check: func(t *testing.T, p *spec.Project) {
		f := service(t, p, "fetcher")
		diff(t, "scale", f.Replicas, 5)
		diff(t, "on-failure:3", f.Restart, spec.RestartPolicy{Condition: spec.RestartOnFailure, MaxAttempts: 3})
		diff(t, "backoff", f.Tend.Backoff, spec.Backoff{Initial: time.Second, Max: 5 * time.Minute, ResetAfter: time.Minute})
		diff(t, "partial backoff", service(t, p, "thumbnailer").Tend.Backoff.Max, 30*time.Second)
		diff(t, "unless-stopped", service(t, p, "dispatcher").Restart.Condition, spec.RestartAny)
	}},
}

func TestCorpus(t *testing.T) {
	for _, c := range corpus {
		name := c.dir
		if len(c.files) > 1 {
			name += "+" + strings.TrimSuffix(c.files[len(c.files)-1], ".yaml")
		}
		if len(c.profiles) > 0 {
			name += "/" + strings.Join(c.profiles, ",")
		}
		if len(c.services) > 0 {
			name += ":" + strings.Join(c.services, ",")
		}
		t.Run(name, func(t *testing.T) {
			p, warnings := loadCorpus(t, c)
			var got []string
			for _, w := range warnings {
				got = append(got, strings.TrimPrefix(w.String(), filepath.Join("testdata/corpus", c.dir, "compose.yaml")+": "))
			}
			diff(t, "warnings", got, c.warnings)
			c.check(t, p)
			roundTrip(t, p)
		})
	}
}

func loadCorpus(t *testing.T, c corpusCase) (*spec.Project, []spec.Warning) {
	t.Helper()
	files := c.files
	if files == nil {
		files = []string{"compose.yaml"}
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join("testdata/corpus", c.dir, f))
	}
	p, warnings, err := Load(context.Background(), LoadOptions{Files: paths, Profiles: c.profiles, Environ: c.environ, Services: c.services})
	if err != nil {
		t.Fatal(err)
	}
	return p, warnings
}

// roundTrip checks that the project survives the API (JSON) unchanged and valid.
func roundTrip(t *testing.T, p *spec.Project) {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back spec.Project
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	// Values of secrets and configs stay in the CLI: the daemon's copy lacks them.
	want := withoutValues(p)
	diff(t, "JSON round trip", &back, want)
	if err := spec.Validate(&back); err != nil {
		t.Errorf("Validate(round trip) = %v", err)
	}
}

// withoutValues is a deep enough copy of p with no FileMount.Content.
func withoutValues(p *spec.Project) *spec.Project {
	out := *p
	out.Services = slices.Clone(p.Services)
	for i := range out.Services {
		s := &out.Services[i]
		s.Secrets, s.Configs = slices.Clone(s.Secrets), slices.Clone(s.Configs)
		for _, ms := range [][]spec.FileMount{s.Secrets, s.Configs} {
			for j := range ms {
				ms[j].Content = nil
			}
		}
	}
	return &out
}

// TestCorpusIsCovered fails when a stack is added to the corpus without a case.
func TestCorpusIsCovered(t *testing.T) {
	entries, err := os.ReadDir("testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range corpus {
		covered[c.dir] = true
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "invalid" && !covered[e.Name()] {
			t.Errorf("testdata/corpus/%s has no case in corpus", e.Name())
		}
	}
	if len(covered) < 20 {
		t.Errorf("the corpus has %d stacks, want at least 20", len(covered))
	}
}

func service(t *testing.T, p *spec.Project, name string) spec.Service {
	t.Helper()
	s, ok := p.Service(name)
	if !ok {
		t.Fatalf("no service %q in %v", name, names(p))
	}
	return *s
}

func names(p *spec.Project) []string {
	var out []string
	for _, s := range p.Services {
		out = append(out, s.Name)
	}
	return out
}

func targets(files []spec.FileMount) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Target)
	}
	return out
}

// mountTypes summarises mounts as "type [volume] [ro]".
func mountTypes(mounts []spec.Mount) []string {
	var out []string
	for _, m := range mounts {
		parts := []string{string(m.Type)}
		if m.Type == spec.MountVolume && m.Source != "" {
			parts = append(parts, m.Source)
		}
		if m.ReadOnly {
			parts = append(parts, "ro")
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

type invalidCase struct {
	file string
	want string
}

// invalidCorpus are the files under testdata/corpus/invalid and their errors,
// without the file name.
var invalidCorpus = []invalidCase{
	{"network-mode-with-networks", `service "exporter": network_mode: "host" cannot be combined with networks: a container in another network mode joins no network of its own; keep one of the two`},
	{"provider", `service "database": provider: a provider service (type "cloud-db") is run by a docker compose plugin, not by a container; tend runs containers only: run the provider's resource outside tend and give the services its address`},
	{"image-mount", `service "web": volumes: image mount at /usr/share/nginx/html: tend does not mount an image's files (engines before API 1.48, such as Docker 20.10, cannot); copy the files into a named volume, or build them into this service's image, instead`},
	{"npipe-mount", `service "agent": volumes: npipe mount at \\.\pipe\docker_engine: named pipes exist on Windows engines only; on Linux bind the unix socket instead (for the engine: /var/run/docker.sock)`},
	{"config-external", `service "proxy": configs: config "site" is external (kept by a swarm or another store tend cannot read, and docker compose up refuses it too); declare it with file:, environment: or content:`},
	{"remote-context", `service "app": build.context: "https://git.example.com/acme/app.git#main" is a remote context; tend builds from local directories only: clone it (git clone) and give build.context the directory`},
	{"null-service", `services.worker must be a mapping`},
	{"networks-string", `service "app": networks: must be a list or a mapping`},
	{"extends-file-missing", `service "app": extends.file: cannot read common/services.yaml: no such file or directory`},
	{"container-name-replicas", `service "web": container_name: "web" names one container, but the service has 2 replicas; remove container_name or run one replica`},
	{"fixed-address-replicas", `service "resolver": networks.edge: the fixed address 10.78.0.53 fits one container, but the service has 2 replicas`},
	{"healthy-without-healthcheck-disabled", `service "app": depends_on: condition service_healthy needs a health check on service "db", whose healthcheck is disabled`},
	{"secret-undeclared", `service "api": secrets: secret "db_password" is not declared under top-level secrets`},
	{"secret-environment-unset", `service "api": secrets: secret "api_token" comes from the environment variable UNSET_API_TOKEN, which is not set`},
	{"secret-external", `service "api": secrets: secret "tls" is external (kept by a swarm or another store tend cannot read, and docker compose up refuses it too); declare it with file:, environment: or content:`},
	{"secret-missing-file", `service "api": secrets: secret "db_password": cannot read secrets/db_password.txt: no such file or directory`},
	{"ulimit-unknown", `service "db": ulimits: unknown limit "openfiles" (known: core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)`},
	{"ulimit-soft-above-hard", `service "db": ulimits.nofile: soft limit 65536 is greater than hard limit 1024`},
	{"memory-conflict", `service "worker": mem_limit: 512MiB conflicts with deploy.resources.limits.memory 1GiB`},
	{"memory-too-small", `service "worker": deploy.resources.limits.memory: must be at least 6MiB, the engine's minimum (got 4MiB)`},
	{"working-dir-relative", `service "app": working_dir: must be an absolute path (got "app")`},
	{"tmpfs-over-volume", `service "app": tmpfs: /data is already mounted by volumes`},
	{"tmpfs-mode", `service "app": tmpfs: /tmp: mode must be octal, such as 1777 (got "rwxrwxrwx")`},
	{"dns-hostname", `service "app": dns: "dns.google" is not an IP address`},
	{"extra-host-bad-ip", `service "app": extra_hosts: db.internal: "10.0.0.256" is not an IP address or host-gateway`},
	{"hostname-invalid", `service "app": hostname: invalid hostname "-app": want at most 64 letters, digits, dashes, dots and underscores, starting with a letter, digit or underscore`},
	{"extends-unknown-service", `service "app": extends: service "base" not found`},
}

// TestCorpusInvalid checks each message word for word: they are the user interface.
func TestCorpusInvalid(t *testing.T) {
	for _, tt := range invalidCorpus {
		t.Run(tt.file, func(t *testing.T) {
			file := "testdata/corpus/invalid/" + tt.file + ".yaml"
			p, warnings, err := Load(context.Background(), LoadOptions{Files: []string{file}, Environ: []string{"API_TOKEN=do-not-print"}})
			wantError(t, err, file+": "+tt.want)
			if p != nil || warnings != nil {
				t.Errorf("got a project or warnings with an error")
			}
			if err != nil && strings.Contains(err.Error(), "do-not-print") {
				t.Errorf("the error shows a secret's value")
			}
		})
	}
}

// TestCorpusInvalidIsCovered fails when an invalid file is added without its message.
func TestCorpusInvalidIsCovered(t *testing.T) {
	files, err := filepath.Glob("testdata/corpus/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Errorf("%d invalid files, want at least 8", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if !slices.ContainsFunc(invalidCorpus, func(c invalidCase) bool { return c.file == name }) {
			t.Errorf("%s has no case in invalidCorpus", f)
		}
	}
}
