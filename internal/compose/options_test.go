package compose

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/spec"
)

func TestLoadOptions(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want spec.Options
	}{
		{name: "none", keys: "", want: spec.Options{}},
		{name: "identity", keys: "    user: \"1000:1000\"\n    working_dir: /srv\n    hostname: web-1\n    read_only: true",
			want: spec.Options{User: "1000:1000", WorkingDir: "/srv", Hostname: "web-1", ReadOnly: true}},
		{name: "init", keys: "    init: true", want: spec.Options{Init: true}},
		{name: "init false", keys: "    init: false", want: spec.Options{}},
		{name: "capabilities", keys: "    cap_add: [NET_ADMIN, SYS_TIME]\n    cap_drop: [ALL]",
			want: spec.Options{CapAdd: []string{"NET_ADMIN", "SYS_TIME"}, CapDrop: []string{"ALL"}}},
		{name: "extra_hosts list, both separators", keys: `    extra_hosts: ["web.local:10.0.0.3", "db.local=10.0.0.2", "v6=::1", "gw:host-gateway"]`,
			want: spec.Options{ExtraHosts: []spec.ExtraHost{
				{Host: "db.local", IP: "10.0.0.2"}, {Host: "gw", IP: "host-gateway"}, {Host: "v6", IP: "::1"}, {Host: "web.local", IP: "10.0.0.3"}}}},
		{name: "extra_hosts mapping", keys: "    extra_hosts:\n      db: 10.0.0.2",
			want: spec.Options{ExtraHosts: []spec.ExtraHost{{Host: "db", IP: "10.0.0.2"}}}},
		{name: "dns string", keys: "    dns: 1.1.1.1", want: spec.Options{DNS: []string{"1.1.1.1"}}},
		{name: "dns list", keys: "    dns: [1.1.1.1, 8.8.8.8]", want: spec.Options{DNS: []string{"1.1.1.1", "8.8.8.8"}}},
		{name: "tmpfs string", keys: "    tmpfs: /run", want: spec.Options{Tmpfs: []spec.Tmpfs{{Target: "/run"}}}},
		{name: "tmpfs list with options", keys: `    tmpfs: [/run, "/tmp:size=64m,mode=1777"]`,
			want: spec.Options{Tmpfs: []spec.Tmpfs{{Target: "/run"}, {Target: "/tmp", Options: "size=64m,mode=1777"}}}},
		{name: "tmpfs volume", keys: "    tmpfs: /run\n    volumes:\n      - type: tmpfs\n        target: /scratch\n        read_only: true\n        tmpfs: {size: 1m, mode: 0700}",
			want: spec.Options{Tmpfs: []spec.Tmpfs{{Target: "/run"}, {Target: "/scratch", Options: "size=1048576,mode=700,ro"}}}},
		{name: "ulimits", keys: "    ulimits:\n      nproc: 65535\n      nofile: {soft: 1024, hard: 2048}",
			want: spec.Options{Ulimits: []spec.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 65535, Hard: 65535}}}},
		{name: "deploy limits", keys: "    deploy:\n      resources:\n        limits: {cpus: \"0.1\", memory: 128M, pids: 100}",
			want: spec.Options{Limits: spec.Limits{CPUs: 0.1, Memory: 128 << 20, Pids: 100}}},
		{name: "older limit keys", keys: "    cpus: 1.5\n    mem_limit: 1g\n    pids_limit: 10",
			want: spec.Options{Limits: spec.Limits{CPUs: 1.5, Memory: 1 << 30, Pids: 10}}},
		{name: "both forms agree", keys: "    mem_limit: 64m\n    deploy:\n      resources:\n        limits: {memory: 64m, cpus: \"2\"}",
			want: spec.Options{Limits: spec.Limits{CPUs: 2, Memory: 64 << 20}}},
		{name: "logging", keys: "    logging:\n      driver: json-file\n      options: {max-size: 10m, max-file: \"3\"}",
			want: spec.Options{Logging: &spec.Logging{Driver: "json-file", Options: map[string]string{"max-size": "10m", "max-file": "3"}}}},
		{name: "logging options only", keys: "    logging:\n      options: {max-size: 1m}",
			want: spec.Options{Logging: &spec.Logging{Options: map[string]string{"max-size": "1m"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadService(t, tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			diff(t, "options", s.Options, tt.want)
		})
	}
}

func TestLoadKeyErrors(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want string
	}{
		{name: "limits disagree", keys: "    mem_limit: 64m\n    deploy:\n      resources:\n        limits: {memory: 128m}",
			want: `compose.yaml: service "app": mem_limit: 64MiB conflicts with deploy.resources.limits.memory 128MiB`},
		{name: "cpus disagree", keys: "    cpus: 1\n    deploy:\n      resources:\n        limits: {cpus: \"0.5\"}",
			want: `compose.yaml: service "app": cpus: 1 conflicts with deploy.resources.limits.cpus 0.5`},
		{name: "memory too small", keys: "    deploy:\n      resources:\n        limits: {memory: 1m}",
			want: `compose.yaml: service "app": deploy.resources.limits.memory: must be at least 6MiB, the engine's minimum (got 1MiB)`},
		{name: "relative working_dir", keys: "    working_dir: srv",
			want: `compose.yaml: service "app": working_dir: must be an absolute path (got "srv")`},
		{name: "unknown ulimit", keys: "    ulimits: {nofiles: 10}",
			want: `compose.yaml: service "app": ulimits: unknown limit "nofiles" (known: core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)`},
		{name: "ulimit soft above hard", keys: "    ulimits:\n      nofile: {soft: 4096, hard: 1024}",
			want: `compose.yaml: service "app": ulimits.nofile: soft limit 4096 is greater than hard limit 1024`},
		{name: "bad dns", keys: "    dns: [one.one.one.one]",
			want: `compose.yaml: service "app": dns: "one.one.one.one" is not an IP address`},
		{name: "bad extra host", keys: `    extra_hosts: ["db:10.0.0.300"]`,
			want: `compose.yaml: service "app": extra_hosts: db: "10.0.0.300" is not an IP address or host-gateway`},
		{name: "tmpfs over a volume", keys: "    tmpfs: /data\n    volumes: [/data]",
			want: `compose.yaml: service "app": tmpfs: /data is already mounted by volumes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadService(t, tt.keys)
			wantError(t, err, tt.want)
		})
	}
}

// writeProject writes files (name -> content) into a new directory and returns it.
func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadSecretsAndConfigs(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": `
services:
  app:
    image: app:1
    secrets:
      - db_password
      - source: api_key
        target: api.key
      - source: tls_key
        target: /etc/tls/key.pem
    configs:
      - nginx
      - source: app_conf
        target: /etc/app/app.conf
      - source: relative
        target: etc/relative.conf
secrets:
  db_password: {file: ./secrets/db_password.txt}
  api_key: {file: ./secrets/api.key}
  tls_key: {file: ./secrets/tls.key}
  unused_env: {environment: NOT_USED}
configs:
  nginx: {file: ./nginx.conf}
  app_conf: {file: ./app.conf}
  relative: {file: ./app.conf}
`,
		"secrets/db_password.txt": "hunter2", "secrets/api.key": "k", "secrets/tls.key": "t",
		"nginx.conf": "", "app.conf": "",
	})
	p, warnings, err := Load(context.Background(), LoadOptions{WorkingDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	s := p.Services[0]
	diff(t, "secrets", s.Secrets, []spec.FileMount{
		{Name: "db_password", Source: filepath.Join(dir, "secrets/db_password.txt"), Target: "/run/secrets/db_password"},
		{Name: "api_key", Source: filepath.Join(dir, "secrets/api.key"), Target: "/run/secrets/api.key"},
		{Name: "tls_key", Source: filepath.Join(dir, "secrets/tls.key"), Target: "/etc/tls/key.pem"},
	})
	diff(t, "configs", s.Configs, []spec.FileMount{
		{Name: "nginx", Source: filepath.Join(dir, "nginx.conf"), Target: "/nginx"},
		{Name: "app_conf", Source: filepath.Join(dir, "app.conf"), Target: "/etc/app/app.conf"},
		{Name: "relative", Source: filepath.Join(dir, "app.conf"), Target: "/etc/relative.conf"},
	})
}

func TestLoadSecretErrors(t *testing.T) {
	const value = "s3cr3t-value"
	tests := []struct {
		name     string
		service  string // the app service's secrets and configs keys
		toplevel string
		want     string
	}{
		{name: "undeclared", service: "    secrets: [token]", toplevel: "secrets:\n  other: {file: ./token}",
			want: `compose.yaml: service "app": secrets: secret "token" is not declared under top-level secrets`},
		{name: "from an unset variable", service: "    secrets: [token]", toplevel: "secrets:\n  token: {environment: UNSET_TOKEN}",
			want: `compose.yaml: service "app": secrets: secret "token" comes from the environment variable UNSET_TOKEN, which is not set`},
		{name: "external", service: "    secrets: [token]", toplevel: "secrets:\n  token: {external: true}",
			want: `compose.yaml: service "app": secrets: secret "token" is external (kept by a swarm or another store tend cannot read, and docker compose up refuses it too); declare it with file:, environment: or content:`},
		{name: "missing file", service: "    secrets: [token]", toplevel: "secrets:\n  token: {file: ./nope/token}",
			want: `compose.yaml: service "app": secrets: secret "token": cannot read nope/token: no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeProject(t, map[string]string{
				"compose.yaml": "services:\n  app:\n    image: app:1\n" + tt.service + "\n" + tt.toplevel + "\n",
				"token":        "file-content",
			})
			_, _, err := Load(context.Background(), LoadOptions{WorkingDir: dir, Environ: []string{"TOKEN=" + value}})
			wantError(t, err, tt.want)
			if err != nil && strings.Contains(err.Error(), value) {
				t.Errorf("the error shows the secret's value: %v", err)
			}
		})
	}
}

// Secrets and configs from the environment or inline content: the value stays in
// memory (never in the JSON the daemon gets) and its file is named by its digest.
func TestLoadValueSecrets(t *testing.T) {
	const value = "s3cr3t-value"
	load := func(v string) *spec.Project {
		t.Helper()
		dir := writeProject(t, map[string]string{"compose.yaml": `services:
  app:
    image: app:1
    secrets: [token]
    configs: [{source: conf, target: /etc/app.conf}]
secrets:
  token: {environment: TOKEN}
configs:
  conf: {content: "color=${COLOR}"}
`})
		p, _, err := Load(context.Background(), LoadOptions{WorkingDir: dir, Environ: []string{"TOKEN=" + v, "COLOR=blue"}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := load(value)
	app, _ := p.Service("app")
	sec, conf := app.Secrets[0], app.Configs[0]
	diff(t, "secret", []string{sec.Target, sec.From, string(sec.Content)}, []string{"/run/secrets/token", "environment TOKEN", value})
	diff(t, "config", []string{conf.Target, conf.From, string(conf.Content)}, []string{"/etc/app.conf", "content", "color=blue"})
	if !filepath.IsAbs(sec.Source) || strings.Contains(sec.Source, value) {
		t.Errorf("secret source %q", sec.Source)
	}
	if plain := sha256.Sum256([]byte(value)); strings.Contains(sec.Source, hex.EncodeToString(plain[:16])) {
		t.Errorf("secret source %q is the value's plain digest: a reader of tend's store could test guesses", sec.Source)
	}
	if again, _ := load(value).Service("app"); again.Secrets[0].Source != sec.Source {
		t.Errorf("the same value got another file (%s, then %s): every tend up would replace the replicas", sec.Source, again.Secrets[0].Source)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), value) {
		t.Errorf("the project's JSON holds the secret's value: %s", b)
	}
	other, _ := load("another-value").Service("app")
	if other.Secrets[0].Source == sec.Source || other.Hash() == app.Hash() {
		t.Error("a changed value must change the file and the spec hash (so replicas are replaced)")
	}
}

// The value directory sits on a tmpfs every user shares: one another user made
// (or left open) is refused, never written to.
func TestValueDirMustBeTheUsers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "values")
	if _, err := valueKey(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := valueKey(dir); err == nil || !strings.Contains(err.Error(), "is not a directory of yours alone") {
		t.Errorf("an open directory: %v", err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	m := spec.FileMount{Name: "token", Source: filepath.Join(link, "abc"), From: "content", Content: []byte("v")}
	err := WriteValues(&spec.Project{Services: []spec.Service{{Name: "app", Options: spec.Options{Secrets: []spec.FileMount{m}}}}})
	if err == nil || !strings.Contains(err.Error(), "is not a directory of yours alone") {
		t.Errorf("a symbolic link: %v", err)
	}
}

func TestWriteValues(t *testing.T) {
	dir := t.TempDir()
	m := spec.FileMount{Name: "token", Source: filepath.Join(dir, "values", "abc"), Target: "/run/secrets/token", From: "environment TOKEN", Content: []byte("v1")}
	p := &spec.Project{Services: []spec.Service{{Name: "app", Options: spec.Options{Secrets: []spec.FileMount{m}}}}}
	for range 2 { // a second write finds the file there
		if err := WriteValues(p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(m.Source)
	if err != nil || string(got) != "v1" {
		t.Fatalf("read %q, %v", got, err)
	}
	fi, _ := os.Stat(m.Source)
	di, _ := os.Stat(filepath.Dir(m.Source))
	if fi.Mode().Perm() != 0o444 || di.Mode().Perm() != 0o700 {
		t.Errorf("modes: file %v, directory %v; want 0444 in 0700", fi.Mode().Perm(), di.Mode().Perm())
	}
}
