package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// keysStack uses most of the container settings tend honours. The demo serves
// as an unprivileged user on a read-only root, under the engine's init.
const keysStack = `
services:
  web:
    image: tend-demo:dev
    user: "65534:65534"
    working_dir: /srv/app
    hostname: keys-web
    read_only: true
    init: true
    cap_drop: [ALL]
    extra_hosts: ["db.example:10.1.2.3"]
    dns: [192.0.2.53]
    tmpfs:
      - /tmp:size=8m,mode=1777
    volumes:
      - type: tmpfs
        target: /cache
        tmpfs: {size: 4m}
    secrets: [api_token]
    configs:
      - source: settings
        target: /etc/web/settings.conf
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    pids_limit: 64
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64M}
    logging:
      driver: json-file
      options: {max-size: 1m, max-file: "2"}
    healthcheck:
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 500ms
secrets:
  api_token:
    file: ./token.txt
configs:
  settings:
    file: ./settings.conf
`

// hostConfig is the part of `docker inspect` the keys end up in.
type hostConfig struct {
	ReadonlyRootfs bool
	Init           *bool
	CapDrop        []string
	ExtraHosts     []string
	DNS            []string `json:"Dns"`
	Tmpfs          map[string]string
	Memory         int64
	NanoCPUs       int64 `json:"NanoCpus"`
	PidsLimit      *int64
	Ulimits        []struct {
		Name       string
		Soft, Hard int64
	}
	LogConfig struct {
		Type   string
		Config map[string]string
	}
	Mounts []struct {
		Type, Source, Target string
		ReadOnly             bool
	}
}

func TestKeysReachTheEngine(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.project(keysStack)
	dir := filepath.Dir(file)
	writeFile(t, filepath.Join(dir, "token.txt"), "e2e-secret-value\n")
	writeFile(t, filepath.Join(dir, "settings.conf"), "color=blue\n")

	d.mustTend("up", "-f", file, "-p", name, "--wait", "--timeout", "1m")
	c := name + "-web-1"
	var host hostConfig
	if err := json.Unmarshal([]byte(docker(t, "inspect", "-f", "{{json .HostConfig}}", c)), &host); err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("user", docker(t, "inspect", "-f", "{{.Config.User}}", c), "65534:65534")
	check("working_dir", docker(t, "inspect", "-f", "{{.Config.WorkingDir}}", c), "/srv/app")
	check("hostname", docker(t, "inspect", "-f", "{{.Config.Hostname}}", c), "keys-web")
	check("read_only", host.ReadonlyRootfs, true)
	check("init", host.Init != nil && *host.Init, true)
	check("cap_drop", host.CapDrop, []string{"ALL"})
	check("extra_hosts", host.ExtraHosts, []string{"db.example:10.1.2.3"})
	check("dns", host.DNS, []string{"192.0.2.53"})
	check("tmpfs", host.Tmpfs, map[string]string{"/tmp": "size=8m,mode=1777", "/cache": "size=4194304"})
	check("memory", host.Memory, int64(64<<20))
	check("cpus", host.NanoCPUs, int64(500_000_000))
	check("pids_limit", host.PidsLimit != nil && *host.PidsLimit == 64, true)
	check("ulimits", len(host.Ulimits) == 1 && host.Ulimits[0].Name == "nofile" && host.Ulimits[0].Soft == 1024 && host.Ulimits[0].Hard == 2048, true)
	check("logging", host.LogConfig.Type+" "+host.LogConfig.Config["max-size"]+" "+host.LogConfig.Config["max-file"], "json-file 1m 2")
	// tend's own mounts (its shim's binary and control socket) come last; the user's come first.
	var userMounts int
	for _, m := range host.Mounts {
		if !strings.HasPrefix(m.Target, "/.tend/") {
			userMounts++
		}
	}
	check("secret and config mounts", userMounts, 2)
	for i, want := range []string{"/run/secrets/api_token", "/etc/web/settings.conf"} {
		if i < len(host.Mounts) {
			m := host.Mounts[i]
			check("mount "+want, m.Type+" "+m.Target+" "+filepath.Base(m.Source), "bind "+want+" "+[]string{"token.txt", "settings.conf"}[i])
			check("mount "+want+" read-only", m.ReadOnly, true)
		}
	}

	// Inside: the process runs (it became healthy), under init (not PID 1), with the hostname.
	inside := index(t, c)
	check("hostname inside", inside.Hostname, "keys-web")
	if inside.PID == 1 {
		t.Errorf("the demo runs as PID 1: init: true did not put the engine's init in front")
	}
	// docker cp reads the mounted secret through the container: it is there, read-only.
	out := filepath.Join(t.TempDir(), "token")
	docker(t, "cp", c+":/run/secrets/api_token", out)
	check("secret content", readFile(t, out), "e2e-secret-value\n")

	// The secret's value appears nowhere tend keeps or prints: not in the journal, not in ps.
	for _, text := range []string{d.mustTend("events", "--json", "-n", "0", "-p", name), d.mustTend("ps", "--json", "-p", name)} {
		if strings.Contains(text, "e2e-secret-value") {
			t.Errorf("a secret value leaked: %s", text)
		}
	}
}

// TestKeysChangeReplacesReplicas: the new keys are part of the spec hash.
func TestKeysChangeReplacesReplicas(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.up(`
services:
  web:
    image: tend-demo:dev
    ulimits:
      nofile: 1024
    mem_limit: 64m
`)
	c := name + "-web-1"
	id := docker(t, "inspect", "-f", "{{.Id}}", c)
	writeFile(t, file, strings.Replace(readFile(t, file), "mem_limit: 64m", "mem_limit: 96m", 1))
	d.mustTend("up", "-f", file, "-p", name, "--wait")
	waitFor(t, 15*time.Second, "web replaced", func() bool {
		id2 := inspectGone(c, "{{.Id}}")
		return id2 != "" && id2 != id
	})
	if got := docker(t, "inspect", "-f", "{{.HostConfig.Memory}}", c); got != "100663296" {
		t.Errorf("memory of the new replica = %s, want 96MiB", got)
	}
	if _, ok := findEvent(d.events(name), "web", "replace", "rollout"); !ok {
		t.Errorf("journal lacks the replace")
	}
}

type demoIndex struct {
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
}

func index(t *testing.T, container string) demoIndex {
	t.Helper()
	ip := strings.Fields(containerIP(t, container))[0]
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + ip + ":8080/")
	if err != nil {
		t.Fatalf("GET / of %s: %v", container, err)
	}
	defer resp.Body.Close()
	var out demoIndex
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET / of %s: %v", container, err)
	}
	return out
}

func TestConfigValidatesWithoutDaemon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "compose.yaml"), keysStack)
	writeFile(t, filepath.Join(dir, "token.txt"), "e2e-secret-value\n")
	writeFile(t, filepath.Join(dir, "settings.conf"), "color=blue\n")
	nowhere := filepath.Join(dir, "no-daemon.sock") // config must not need one

	stdout, stderr, code := tendIn(dir, nowhere, "config", "--quiet")
	if code != 0 || stdout != "" || stderr != "" {
		t.Errorf("config --quiet of a valid file: exit %d, stdout %q, stderr %q; want 0 and nothing", code, stdout, stderr)
	}

	stdout, stderr, code = tendIn(dir, nowhere, "config")
	if code != 0 {
		t.Fatalf("config: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"name: web", "user: 65534:65534", "memory: 64MiB", "interval: 500ms", "source: " + filepath.Join(dir, "token.txt")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("config output lacks %q:\n%s", want, stdout)
		}
	}

	stdout, _, code = tendIn(dir, nowhere, "config", "--json")
	var doc struct {
		Name     string `json:"name"`
		Services []struct {
			Name    string `json:"name"`
			Secrets []struct {
				Target string `json:"target"`
			} `json:"secrets"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); code != 0 || err != nil {
		t.Fatalf("config --json: exit %d, %v:\n%s", code, err, stdout)
	}
	if len(doc.Services) != 1 || len(doc.Services[0].Secrets) != 1 || doc.Services[0].Secrets[0].Target != "/run/secrets/api_token" {
		t.Errorf("config --json: %+v", doc)
	}
	if strings.Contains(stdout, "e2e-secret-value") {
		t.Errorf("config prints a secret's value")
	}
}

func TestConfigReportsErrorsAndWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A secret from an unset variable is refused; one from a set variable (here
	// from .env) loads, and its value is never printed.
	writeFile(t, filepath.Join(dir, ".env"), "API_TOKEN=e2e-env-secret\n")
	compose := `
services:
  web:
    image: tend-demo:dev
    secrets: [api_token]
secrets:
  api_token:
    environment: VAR
`
	writeFile(t, filepath.Join(dir, "compose.yaml"), strings.Replace(compose, "VAR", "UNSET_API_TOKEN", 1))
	stdout, stderr, code := tendIn(dir, "", "config")
	want := `tend: compose.yaml: service "web": secrets: secret "api_token" comes from the environment variable UNSET_API_TOKEN, which is not set` + "\n"
	if code != 2 || stdout != "" || stderr != want {
		t.Errorf("config of an invalid file: exit %d, stdout %q, stderr %q; want 2, nothing, %q", code, stdout, stderr, want)
	}
	writeFile(t, filepath.Join(dir, "compose.yaml"), strings.Replace(compose, "VAR", "API_TOKEN", 1))
	stdout, stderr, code = tendIn(dir, "", "config")
	if code != 0 || !strings.Contains(stdout, "from: environment API_TOKEN") || strings.Contains(stdout+stderr, "e2e-env-secret") {
		t.Errorf("config of a secret from .env: exit %d, stdout %q, stderr %q; want it loaded, its value not shown", code, stdout, stderr)
	}

	// A key tend does not honour is a warning on stderr; the document on stdout stays clean.
	writeFile(t, filepath.Join(dir, "compose.yaml"), "services:\n  web:\n    image: tend-demo:dev\n    privileged: true\n")
	stdout, stderr, code = tendIn(dir, "", "config", "--quiet")
	if code != 0 || stdout != "" || stderr != "warning: compose.yaml: service \"web\": privileged: not honoured by tend, ignored\n" {
		t.Errorf("config --quiet with a warning: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	if _, _, code := tendIn(dir, "", "config", "-f", "missing.yaml"); code != 2 {
		t.Errorf("config of a missing file: exit %d, want 2", code)
	}
	if _, _, code := tendIn(dir, "", "config", "--bogus"); code != 2 {
		t.Errorf("config with a bad flag: exit %d, want 2", code)
	}
}
