package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// containerID is the full ID of the container with this name, or "".
func containerID(t *testing.T, name string) string {
	t.Helper()
	out := docker(t, "ps", "-aq", "--no-trunc", "--filter", "name=^/"+name+"$")
	return strings.TrimSpace(out)
}

// replaced waits for the slot's container to be another one than old, with
// no replacement left beside it, and returns the new ID.
func replaced(t *testing.T, d *daemon, project, container, old string, timeout time.Duration) string {
	t.Helper()
	var id string
	waitFor(t, timeout, container+" replaced", func() bool {
		id = containerID(t, container)
		return id != "" && id != old && containerID(t, container+"-next") == "" && !containerExists(t, old)
	})
	// The journal entry is written once the takeover returns, a moment later.
	waitFor(t, 5*time.Second, "the takeover of "+container+" in the journal", func() bool {
		for _, e := range d.events(project) {
			if e.Action == "takeover" && strings.HasPrefix(old, e.Container) && e.Container != "" {
				return true
			}
		}
		return false
	})
	return id
}

// inspectGone formats a container's inspect, or "" when it does not exist:
// for polling a slot whose container tend may be removing at that moment.
func inspectGone(name, format string) string {
	out, err := exec.Command("docker", "inspect", "-f", format, name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func containerExists(t *testing.T, id string) bool {
	return strings.TrimSpace(docker(t, "ps", "-aq", "--no-trunc", "--filter", "id="+id)) != ""
}

// runningCount counts the running containers of a slot, replacements included.
func runningCount(t *testing.T, project, service string, slot int) int {
	out := docker(t, "ps", "-q", "--filter", "label=io.tend.project="+project,
		"--filter", "label=io.tend.service="+service, "--filter", "label=io.tend.slot="+strconv.Itoa(slot))
	return len(strings.Fields(out))
}

func TestSickReplicaIsReplacedStartFirst(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  web:
    image: tend-demo:dev
    volumes: [data:/data]
    deploy:
      replicas: 2
    x-tend:
      liveness:
        http: {port: 8080, path: /health, status: 200-299, body: ok}
        interval: 500ms
        timeout: 1s
        failure_threshold: 2
volumes:
  data:
`)
	web1 := name + "-web-1"
	old := containerID(t, web1)
	other := containerID(t, name+"-web-2")

	// Capacity never dips: the slot has a running container at every look.
	var dipped atomic.Bool
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if runningCount(t, name, "web", 1) == 0 {
				dipped.Store(true)
			}
		}
	}()
	post(t, web1, "/sick")
	id := replaced(t, d, name, web1, old, 20*time.Second)
	close(stop)
	<-done
	if dipped.Load() {
		t.Error("slot web/1 had no running container during its replacement")
	}
	if containerID(t, name+"-web-2") != other {
		t.Error("the healthy replica web/2 was touched")
	}
	es := d.events(name)
	// A standby starts at the first failure; it takes over once the
	// threshold is reached, and the journal says why.
	if e, ok := findEvent(es, "web", "replace", ""); !ok || !strings.Contains(e.Message, "HTTP 503: sick") {
		t.Errorf("want the replacement started with the probe's output in the journal, got %+v", es)
	}
	if e, ok := findEvent(es, "web", "takeover", "liveness"); !ok || !strings.Contains(e.Message, "HTTP 503: sick") || !strings.Contains(e.Message, "liveness probe failed") {
		t.Errorf("want a takeover with reason liveness and the probe's output in the journal, got %+v", es)
	}
	if got := docker(t, "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", id); got != name+"_data" {
		t.Errorf("the replacement mounts %q, want the named volume %s_data", got, name)
	}
	r, _ := byName(d.ps(name), web1)
	if r.Restarts != 1 || r.Live != "passing" || !r.Ready {
		t.Errorf("tend ps after the replacement: %+v, want 1 restart, live passing, ready", r)
	}
}

func TestComposeHealthcheckAloneHeals(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  api:
    image: tend-demo:dev
    healthcheck:
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 1s
      retries: 2
`)
	api := name + "-api-1"
	old := containerID(t, api)
	post(t, api, "/sick")
	replaced(t, d, name, api, old, 30*time.Second)
	es := d.events(name)
	// A standby starts at the engine's first failing check; it takes over
	// once the engine calls the replica unhealthy.
	if e, ok := findEvent(es, "api", "replace", ""); !ok || !strings.Contains(e.Message, "health check failed") {
		t.Errorf("want the replacement started with the check's output in the journal, got %+v", es)
	}
	if e, ok := findEvent(es, "api", "takeover", "unhealthy"); !ok || !strings.Contains(e.Message, "health check failed") {
		t.Errorf("want a takeover with reason unhealthy in the journal, got %+v", es)
	}
}

func TestLogRuleReplacesReplica(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  worker:
    image: tend-demo:dev
    x-tend:
      logs:
        - pattern: "FATAL|panic:"
        - {pattern: "slow query", action: notify, count: 2, window: 1m}
`)
	w := name + "-worker-1"
	old := containerID(t, w)
	post(t, w, "/log?line=slow+query+1")
	post(t, w, "/log?line=slow+query+2")
	waitFor(t, 10*time.Second, "the notify rule in the journal", func() bool {
		e, ok := findEvent(d.events(name), "worker", "log-match", "notify")
		return ok && strings.Contains(e.Message, "matched 2 times: slow query 2")
	})
	if containerID(t, w) != old {
		t.Fatal("a notify rule replaced the replica")
	}
	post(t, w, "/log?line=FATAL+lost+the+database")
	replaced(t, d, name, w, old, 20*time.Second)
	if e, ok := findEvent(d.events(name), "worker", "replace", "log-match"); !ok || !strings.Contains(e.Message, "FATAL lost the database") {
		t.Errorf("want a replace with reason log-match and the line in the journal, got %+v", d.events(name))
	}
}

func TestLogRuleUnderFlood(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  noisy:
    image: tend-demo:dev
    x-tend:
      logs:
        - pattern: "FATAL"
`)
	c := name + "-noisy-1"
	old := containerID(t, c)
	start := time.Now()
	post(t, c, "/heal") // it listens
	ip := strings.Fields(containerIP(t, c))[0]
	// Generous deadlines: the flood and following it share 2 CPUs with the
	// other tests (it once took 76 s in a full run on a slow machine).
	resp, err := (&http.Client{Timeout: 120 * time.Second}).Post("http://"+ip+":8080/flood?mb=100&line=FATAL+after+the+flood", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Logf("the demo wrote 100 MiB in %s", time.Since(start).Round(time.Millisecond))
	replaced(t, d, name, c, old, 120*time.Second)
	if e, ok := findEvent(d.events(name), "noisy", "replace", "log-match"); !ok || !strings.Contains(e.Message, "FATAL after the flood") {
		t.Errorf("want a replace for the line after the flood, got %+v", d.events(name))
	}
	if rss := rssMiB(t, d.cmd.Process.Pid); rss > 150 {
		t.Errorf("tend serve holds %d MiB after following a 100 MiB flood, want bounded memory", rss)
	}
}

// rssMiB reads a process's resident memory.
func rssMiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestReadinessFlappingNeverReplaces(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  web:
    image: tend-demo:dev
    x-tend:
      liveness:
        tcp: {port: 8080}
        interval: 500ms
      readiness:
        http: {port: 8080, path: /health}
        interval: 200ms
        failure_threshold: 1
`)
	web := name + "-web-1"
	old := containerID(t, web)
	for range 3 {
		post(t, web, "/sick")
		waitFor(t, 5*time.Second, "web out of rotation", func() bool { r, _ := byName(d.ps(name), web); return !r.Ready })
		post(t, web, "/heal")
		waitFor(t, 5*time.Second, "web back in rotation", func() bool { r, _ := byName(d.ps(name), web); return r.Ready })
	}
	if containerID(t, web) != old {
		t.Fatal("a replica whose readiness flapped was replaced")
	}
	count := func() (unready, ready int) {
		for _, e := range d.events(name) {
			switch {
			case e.Action == "unready" && strings.Contains(e.Message, "HTTP 503"):
				unready++
			case e.Action == "ready":
				ready++
			case e.Action == "replace":
				t.Errorf("unexpected replace: %+v", e)
			}
		}
		return unready, ready
	}
	// The journal follows the verdicts at the next pass.
	waitFor(t, 5*time.Second, "3 unready and 3 ready entries in the journal", func() bool {
		u, r := count()
		return u == 3 && r == 3
	})
}

func TestDependentsRestartInOrder(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  db:
    image: tend-demo:dev
    x-tend:
      liveness:
        exec: ["/demo", "-probe", "http://127.0.0.1:8080/health"]
        interval: 500ms
        failure_threshold: 2
  api:
    image: tend-demo:dev
    depends_on:
      db: {condition: service_started, restart: true}
  web:
    image: tend-demo:dev
    depends_on:
      api: {condition: service_started, restart: true}
  cron:
    image: tend-demo:dev
    depends_on: [db]
`)
	cronStart := startedAt(t, name+"-cron-1")
	apiStart := startedAt(t, name+"-api-1")
	db := name + "-db-1"
	old := containerID(t, db)
	post(t, db, "/sick")
	replaced(t, d, name, db, old, 20*time.Second)
	waitFor(t, 20*time.Second, "api and web restarted", func() bool {
		_, a := findEvent(d.events(name), "api", "restart", "dependency-replaced")
		_, w := findEvent(d.events(name), "web", "restart", "dependency-replaced")
		return a && w
	})
	es := d.events(name)
	var order []string
	for _, e := range es {
		if e.Action == "restart" && e.Reason == "dependency-replaced" {
			order = append(order, e.Service)
		}
	}
	if strings.Join(order, ",") != "api,web" {
		t.Errorf("dependents restarted in order %v, want api then web", order)
	}
	if !startedAt(t, name+"-api-1").After(apiStart) {
		t.Error("api was not restarted")
	}
	if !startedAt(t, name+"-cron-1").Equal(cronStart) {
		t.Error("cron, which depends on db without restart: true, was restarted")
	}
	if e, ok := findEvent(es, "db", "takeover", "liveness"); !ok || !strings.Contains(e.Message, "exit 1") {
		t.Errorf("want the exec probe's verdict in the journal, got %+v", es)
	}
}

func TestTCPProbeFindsAReplicaThatDoesNotListen(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.project(`
services:
  deaf:
    image: tend-demo:dev
    command: ["-addr", ":9090"]
    x-tend:
      liveness:
        tcp: {port: 8080}
        interval: 300ms
        failure_threshold: 2
      backoff: {initial: 5s}
`)
	d.mustTend("up", "-f", file, "-p", name)
	waitFor(t, 20*time.Second, "a replace for the deaf replica", func() bool {
		e, ok := findEvent(d.events(name), "deaf", "replace", "liveness")
		return ok && strings.Contains(e.Message, "connection refused")
	})
}

func TestLogRuleRestartsDependents(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  db:
    image: tend-demo:dev
    x-tend:
      logs:
        - {pattern: "connections reset", action: restart-dependents}
  api:
    image: tend-demo:dev
    depends_on: [db]
  cron:
    image: tend-demo:dev
`)
	db := containerID(t, name+"-db-1")
	apiStart, cronStart := startedAt(t, name+"-api-1"), startedAt(t, name+"-cron-1")
	post(t, name+"-db-1", "/log?line=all+connections+reset")
	waitFor(t, 15*time.Second, "api restarted", func() bool {
		_, ok := findEvent(d.events(name), "api", "restart", "dependency-replaced")
		return ok && startedAt(t, name+"-api-1").After(apiStart)
	})
	if containerID(t, name+"-db-1") != db {
		t.Error("db itself was replaced; the rule asks only for its dependents")
	}
	if !startedAt(t, name+"-cron-1").Equal(cronStart) {
		t.Error("cron, which does not depend on db, was restarted")
	}
	if e, ok := findEvent(d.events(name), "db", "log-match", "restart-dependents"); !ok || !strings.Contains(e.Message, "all connections reset") {
		t.Errorf("want the matching line in the journal, got %+v", d.events(name))
	}
}
