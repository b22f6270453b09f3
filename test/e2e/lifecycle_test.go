package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestChangedSpecReplacesReplicas(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.up(`
services:
  web:
    image: tend-demo:dev
    environment: {COLOR: blue}
  db:
    image: tend-demo:dev
`)
	webID := docker(t, "inspect", "-f", "{{.Id}}", name+"-web-1")
	dbID := docker(t, "inspect", "-f", "{{.Id}}", name+"-db-1")

	changed := strings.Replace(readFile(t, file), "blue", "green", 1)
	writeFile(t, file, changed)
	d.mustTend("up", "-f", file, "-p", name, "--wait")
	waitFor(t, 15*time.Second, "web replaced", func() bool {
		id := inspectGone(name+"-web-1", "{{.Id}}")
		return id != "" && id != webID
	})
	if env := docker(t, "inspect", "-f", "{{.Config.Env}}", name+"-web-1"); !strings.Contains(env, "COLOR=green") {
		t.Errorf("new web replica runs the old environment: %s", env)
	}
	if got := docker(t, "inspect", "-f", "{{.Id}}", name+"-db-1"); got != dbID {
		t.Errorf("db did not change but was replaced")
	}
	if _, ok := findEvent(d.events(name), "web", "replace", "rollout"); !ok {
		t.Errorf("journal lacks the replace: %+v", d.events(name))
	}
}

func TestDependsOnOrdersStartUp(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  migrate:
    # no restart key: a job others wait on to complete runs once (on-failure)
    image: tend-demo:dev
    command: ["-exit-after", "1s"]
  db:
    image: tend-demo:dev
    healthcheck:
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 500ms
      start_period: 1s
  api:
    image: tend-demo:dev
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
`)
	apiStarted := startedAt(t, name+"-api-1")
	migrateFinished := parseDockerTime(t, docker(t, "inspect", "-f", "{{.State.FinishedAt}}", name+"-migrate-1"))
	if apiStarted.Before(migrateFinished) {
		t.Errorf("api started at %s, before migrate completed at %s", apiStarted, migrateFinished)
	}
	// db's first check runs 500ms after it starts, so a healthy db is at least that old.
	dbStarted := startedAt(t, name+"-db-1")
	if !apiStarted.After(dbStarted.Add(500 * time.Millisecond)) {
		t.Errorf("api started at %s, less than a health interval after db started at %s: it did not wait for healthy", apiStarted, dbStarted)
	}
	reps := d.ps(name)
	if r, _ := byName(reps, name+"-migrate-1"); r.State != "exited" || !r.Ready || r.Restarts != 0 {
		t.Errorf("migrate should have completed once and stay exited: %+v", r)
	}
}

func TestDownKeepsVolumesUnlessAsked(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.up(`
services:
  db:
    image: tend-demo:dev
    volumes: [data:/data]
volumes:
  data:
`)
	d.mustTend("down", "-p", name)
	if out := projectContainers(t, name, "-aq"); out != "" {
		t.Fatalf("containers left after down: %s", out)
	}
	if out := docker(t, "network", "ls", "-q", "--filter", "name="+name+"_default"); out != "" {
		t.Errorf("network left after down: %s", out)
	}
	docker(t, "volume", "inspect", name+"_data") // fails the test if the volume is gone

	d.mustTend("up", "-f", file, "-p", name, "--wait")
	d.mustTend("down", "-p", name, "--volumes")
	if out := docker(t, "volume", "ls", "-q", "--filter", "name="+name+"_data"); out != "" {
		t.Errorf("down --volumes left the volume: %s", out)
	}
	if _, _, code := d.tend("ps", "-p", name); code != 3 {
		t.Errorf("ps of a project that is down: want exit code 3 (not found), got %d", code)
	}
}

func TestBrokenComposeIsRefusedAndChangesNothing(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.up(webStack)
	ids := projectContainers(t, name, "-aq")

	writeFile(t, file, `
services:
  web:
    image: tend-demo:dev
    deploy:
      replicas: 5
      restart_policy:
        condition: sometimes
`)
	_, stderr, code := d.tend("up", "-f", file, "-p", name)
	if code != 2 {
		t.Fatalf("broken compose file: want exit code 2, got %d (%s)", code, stderr)
	}
	for _, want := range []string{"compose.yaml", `"web"`, "restart_policy.condition", "sometimes"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error %q should mention %s", stderr, want)
		}
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
		t.Errorf("error should be one line, got %d lines: %q", n+1, stderr)
	}
	time.Sleep(500 * time.Millisecond)
	if got := projectContainers(t, name, "-aq"); got != ids {
		t.Errorf("a refused file changed the stack")
	}
	if n := len(d.events(name)); n == 0 {
		t.Errorf("journal lost")
	}
}

func TestAPIRefusesBadRequestsWithReasons(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	if fi, err := os.Stat(d.socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: want 0600, got %v (%v)", fi.Mode().Perm(), err)
	}
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	cases := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"PUT", "/v1/projects/x", "{not json", 400, "not a project"},
		{"PUT", "/v1/projects/x", `{"name":"y","services":[]}`, 400, "differs"},
		{"PUT", "/v1/projects/x", `{"name":"x","services":[{"name":"a","image":"","replicas":1}]}`, 400, "image"},
		{"PUT", "/v1/projects/x", `{"name":"x","bogus":1}`, 400, "bogus"},
		{"GET", "/v1/events?limit=-1", "", 400, "limit"},
		{"DELETE", "/v1/projects/nope", "", 404, "not found"},
		{"GET", "/v1/nothing", "", 404, "no such endpoint"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, "http://tend"+tc.path, strings.NewReader(tc.body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s %s %q: got %d %s; want %d mentioning %q", tc.method, tc.path, tc.body, resp.StatusCode, body, tc.status, tc.want)
		}
	}
	// The daemon is still serving.
	d.mustTend("ps")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(ownImage(s)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func startedAt(t *testing.T, container string) time.Time {
	return parseDockerTime(t, docker(t, "inspect", "-f", "{{.State.StartedAt}}", container))
}

func parseDockerTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("parse time %q: %v", s, err)
	}
	return ts
}

func TestServiceJoinsEveryNetworkWithAliases(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  api:
    image: tend-demo:dev
    networks:
      front: {aliases: [public-api]}
      back: {}
networks:
  front: {}
  back: {}
`)
	nets := docker(t, "inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{join $v.Aliases ","}} {{end}}`, name+"-api-1")
	for _, want := range []string{name + "_front=", name + "_back="} {
		if !strings.Contains(nets, want) {
			t.Errorf("container networks %q lack %s", nets, want)
		}
	}
	if !strings.Contains(nets, "public-api") {
		t.Errorf("alias public-api missing: %q", nets)
	}
}
