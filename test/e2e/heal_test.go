package e2e

import (
	"strings"
	"testing"
	"time"
)

const webStack = `
services:
  web:
    image: tend-demo:dev
    deploy:
      replicas: 2
`

func TestKilledAndRemovedContainersComeBack(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(webStack)

	docker(t, "kill", name+"-web-1")
	docker(t, "rm", "-f", name+"-web-2")
	waitFor(t, 15*time.Second, "both replicas running again", func() bool {
		reps := d.ps(name)
		return len(reps) == 2 && reps[0].State == "running" && reps[1].State == "running"
	})
	// The journal entry is written once the action returns, a moment after
	// the engine reports the container running.
	waitFor(t, 5*time.Second, "the journal of both heals", func() bool {
		es := d.events(name)
		_, restarted := findEvent(es, "web", "restart", "exited")
		_, created := findEvent(es, "web", "create", "missing")
		return restarted && created
	})
	es := d.events(name)
	if e, ok := findEvent(es, "web", "restart", "exited"); !ok || !strings.Contains(e.Message, "code 137") {
		t.Errorf("docker kill: want a restart with exit code 137 in the journal, got %+v", es)
	}
	if _, ok := findEvent(es, "web", "create", "missing"); !ok {
		t.Errorf("docker rm -f: want a create with reason missing in the journal, got %+v", es)
	}
	if n := len(strings.Fields(projectContainers(t, name, "-aq"))); n != 2 {
		t.Errorf("want exactly 2 containers, found %d", n)
	}
}

func TestCrashLoopBacksOffThenGivesUp(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.project(`
services:
  flaky:
    image: tend-demo:dev
    command: ["-exit-after", "10ms", "-exit-code", "3"]
    healthcheck: # never passes: the job serves nothing, so up --wait cannot call it ready
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 1s
    deploy:
      restart_policy:
        condition: on-failure
        max_attempts: 3
    x-tend:
      backoff: {initial: 200ms, max: 1s}
`)
	start := time.Now()
	_, stderr, code := d.tend("up", "-f", file, "-p", name, "--wait", "--timeout", "60s")
	if code != 6 {
		t.Fatalf("up --wait of a stack that gives up: want exit code 6, got %d (%s)", code, stderr)
	}
	if !strings.Contains(stderr, name+"-flaky-1") {
		t.Errorf("the error should name the failed replica, got %q", stderr)
	}
	es := d.events(name)
	var restarts []time.Time
	for _, e := range es {
		if e.Action == "restart" {
			restarts = append(restarts, e.Time)
		}
	}
	if len(restarts) != 3 {
		t.Fatalf("want exactly 3 restarts before giving up, got %d: %+v", len(restarts), es)
	}
	// The first restart is immediate; the next two wait about 200ms and 400ms (±10%) after the exit.
	if gap := restarts[2].Sub(restarts[1]); gap < 300*time.Millisecond {
		t.Errorf("the third restart came %s after the second: no backoff", gap)
	}
	if e, ok := findEvent(es, "flaky", "gave-up", "max-attempts"); !ok || !strings.Contains(e.Message, "exited with code 3") {
		t.Errorf("journal lacks the give-up with its cause: %+v", es)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("giving up took %s", time.Since(start))
	}
	// Giving up means no more restarts.
	time.Sleep(1500 * time.Millisecond)
	if r := d.ps(name)[0]; r.Restarts != 3 || r.State != "exited" {
		t.Errorf("after giving up: want 3 restarts and exited, got %+v", r)
	}
}

func TestSigkilledTendAdoptsWithoutDuplicates(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  web:
    image: tend-demo:dev
    deploy: {replicas: 3}
  db:
    image: tend-demo:dev
`)
	ids := projectContainers(t, name, "-q", "--no-trunc")
	before := d.events(name)

	d.kill()
	// The stack keeps running without tend, and a crash while it is away is healed when it returns.
	if got := projectContainers(t, name, "-q", "--no-trunc"); got != ids {
		t.Fatalf("killing tend changed the stack:\n%s\nvs\n%s", ids, got)
	}
	docker(t, "kill", name+"-web-2")
	d.start()
	waitFor(t, 15*time.Second, "web-2 restarted by the new tend", func() bool {
		r, _ := byName(d.ps(name), name+"-web-2")
		return r.State == "running" && r.Restarts == 1
	})
	if got := projectContainers(t, name, "-q", "--no-trunc"); got != ids {
		t.Errorf("adoption replaced containers or made duplicates:\nbefore %s\nafter  %s", ids, got)
	}
	after := d.events(name)
	if len(after) <= len(before) || after[len(before)-1].Seq != before[len(before)-1].Seq {
		t.Fatalf("journal not continued: %d entries before, %d after", len(before), len(after))
	}
	if _, ok := findEvent(after, "", "adopt", "tend-started"); !ok {
		t.Errorf("no adopt entry after restart: %+v", after)
	}
}

func TestSigkillMidActionLeavesNoDuplicateOrOrphan(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.project(`
services:
  web:
    image: tend-demo:dev
    deploy: {replicas: 6}
`)
	d.mustTend("up", "-f", file, "-p", name)
	// Kill tend while it is creating and starting containers.
	waitFor(t, 20*time.Second, "the first container", func() bool {
		return projectContainers(t, name, "-aq") != ""
	})
	d.kill()
	d.start()
	waitFor(t, 30*time.Second, "6 running replicas", func() bool {
		reps := d.ps(name)
		running := 0
		for _, r := range reps {
			if r.State == "running" {
				running++
			}
		}
		return running == 6
	})
	time.Sleep(500 * time.Millisecond)
	if n := len(strings.Fields(projectContainers(t, name, "-aq"))); n != 6 {
		t.Errorf("want exactly 6 containers after the restart, found %d", n)
	}
}

func TestStoppingTendLeavesTheStackRunning(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(webStack)
	d.stop()
	out := docker(t, "ps", "-q", "--filter", "label=io.tend.project="+name, "--filter", "status=running")
	if n := len(strings.Fields(out)); n != 2 {
		t.Fatalf("after SIGTERM to tend: want 2 running containers, got %d", n)
	}
}
