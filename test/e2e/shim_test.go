package e2e

import (
	"strings"
	"testing"
	"time"
)

// A crash is restarted inside its container by tend's shim, with its cause in
// the journal: the engine does not restart the container, so its ID, start
// time and address stay.
func TestCrashRestartsInPlace(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(webStack)
	c := name + "-web-1"
	engineStart := docker(t, "inspect", "-f", "{{.Id}} {{.State.StartedAt}}", c)
	ip := containerIP(t, c)

	for i := 1; i <= 2; i++ {
		post(t, c, "/crash")
		waitFor(t, 10*time.Second, "the restart", func() bool {
			r, _ := byName(d.ps(name), c)
			return r.Restarts == i && r.State == "running"
		})
	}
	if got := docker(t, "inspect", "-f", "{{.Id}} {{.State.StartedAt}}", c); got != engineStart {
		t.Errorf("the engine restarted or replaced the container (%s, now %s): want the process restarted in place", engineStart, got)
	}
	if got := containerIP(t, c); got != ip {
		t.Errorf("address changed from %s to %s", ip, got)
	}
	if e, ok := findEvent(d.events(name), "web", "restart", "exited"); !ok || !strings.Contains(e.Message, "exited with code 1") || e.Slot != 1 {
		t.Errorf("journal lacks the restart with its cause: %+v", d.events(name))
	}
}

// Without tend the shim lets the container end, as a plain container would;
// the next tend restarts it.
func TestCrashWhileTendIsDownIsHealedWhenItReturns(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(webStack)
	c := name + "-web-2"
	d.kill()
	post(t, c, "/crash")
	waitFor(t, 10*time.Second, "the container to exit", func() bool {
		return docker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", c) == "exited 1"
	})
	d.start()
	waitFor(t, 15*time.Second, "the restart by the new tend", func() bool {
		r, _ := byName(d.ps(name), c)
		return r.State == "running" && r.Restarts == 1
	})
}

// Stopping a replica (here by taking the project down) stops its command
// gracefully through the shim, with no restart.
func TestShimForwardsTheStopSignal(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  web:
    image: tend-demo:dev
    stop_grace_period: 20s
`)
	start := time.Now()
	d.mustTend("down", "-p", name)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("down took %s: the stop signal did not reach the command (the 20s grace ran out)", took)
	}
	if _, ok := findEvent(d.events(name), "web", "restart", ""); ok {
		t.Errorf("a stopped replica was restarted: %+v", d.events(name))
	}
}

// With the shim turned off, replicas run their command as PID 1 and a crash is
// restarted through the engine.
func TestWithoutTheShimCrashesRestartThroughTheEngine(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--restart-in-place=false")
	name, _ := d.up(webStack)
	c := name + "-web-1"
	if path := docker(t, "inspect", "-f", "{{.Path}}", c); path != "/demo" {
		t.Fatalf("command %q, want the image's own /demo", path)
	}
	before := docker(t, "inspect", "-f", "{{.State.StartedAt}}", c)
	post(t, c, "/crash")
	waitFor(t, 10*time.Second, "the restart", func() bool {
		r, _ := byName(d.ps(name), c)
		return r.Restarts == 1 && r.State == "running"
	})
	if after := docker(t, "inspect", "-f", "{{.State.StartedAt}}", c); after == before {
		t.Errorf("the engine did not restart the container")
	}
}
