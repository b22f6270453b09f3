package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A replica paused behind tend's back (docker pause) is unpaused in place.
func TestPausedReplicaIsUnpaused(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(webStack)
	victim := name + "-web-1"
	id := docker(t, "inspect", "-f", "{{.Id}}", victim)
	docker(t, "pause", victim)
	waitFor(t, 15*time.Second, "the paused replica unpaused", func() bool {
		_, ok := findEvent(d.events(name), "web", "unpause", "paused")
		return ok && inspectGone(victim, "{{.State.Status}}") == "running"
	})
	if now := docker(t, "inspect", "-f", "{{.Id}}", victim); now != id {
		t.Errorf("the slot holds container %s, want the same %s: unpaused, not replaced", now, id)
	}
}

// chaosReport is the part of `tend chaos --json` the tests read.
type chaosReport struct {
	Faults []struct {
		Kind      string    `json:"kind"`
		Service   string    `json:"service"`
		Error     string    `json:"error"`
		Down      bool      `json:"down"`
		At        time.Time `json:"at"`
		Recovered time.Time `json:"recovered"`
		Entries   []entry   `json:"entries"`
	} `json:"faults"`
	After struct {
		Converged  bool     `json:"converged"`
		Duplicates []string `json:"duplicates"`
		Orphans    []string `json:"orphans"`
	} `json:"after"`
}

// tend chaos breaks a replica, waits for tend to heal it and reports what it did.
func TestChaosReportsTheHealing(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(webStack)
	for _, action := range []string{"kill", "rm", "pause"} {
		out, stderr, code := d.tend("chaos", action, "-p", name, "--service", "web", "--json")
		if code != 0 {
			t.Fatalf("tend chaos %s: exit %d: %s %s", action, code, stderr, out)
		}
		var r chaosReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("tend chaos %s --json: %v\n%s", action, err, out)
		}
		if len(r.Faults) != 1 {
			t.Fatalf("tend chaos %s: %d faults, want 1: %s", action, len(r.Faults), out)
		}
		f := r.Faults[0]
		want := map[string]string{"kill": "restart", "rm": "create", "pause": "unpause"}[action]
		if f.Error != "" || !f.Down || f.Recovered.IsZero() || len(f.Entries) == 0 || f.Entries[0].Action != want {
			t.Errorf("tend chaos %s: fault %+v, want it healed with %s first", action, f, want)
		}
		if !r.After.Converged || len(r.After.Duplicates)+len(r.After.Orphans) != 0 {
			t.Errorf("tend chaos %s: after %+v, want converged with no duplicate or orphan", action, r.After)
		}
	}
	_, stderr, code := d.tend("chaos", "node-kill", "-p", name)
	if code != 2 || !strings.Contains(stderr, "cluster mode") {
		t.Errorf("tend chaos node-kill: exit %d, %q; want exit 2 saying it needs cluster mode", code, stderr)
	}
}

// fullDiskStack journals a log-match for every line with FULL its replicas
// print: a test can make journal entries (of a few KiB each) at will.
const fullDiskStack = `
services:
  web:
    image: tend-demo:dev
    deploy:
      replicas: 2
    x-tend:
      logs:
        - {pattern: FULL, action: notify, cooldown: 1ms}
`

// Issue 20 scope 4: a full disk under --data. Healing goes on; tend ps says
// the store is full; the journal entries of that time are written once space returns.
func TestFullDataDiskKeepsTheJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Fatalf("mount a 4 MiB tmpfs (the test runs as root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", data).Run() })
	// The shim's copy of tend's binary would not fit in 4 MiB: restarts go through the engine.
	d := &daemon{t: t, data: data, socket: filepath.Join(dir, "tend.sock"), flags: []string{"--restart-in-place=false"}}
	d.start()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	name, _ := d.up(fullDiskStack)

	fill := filepath.Join(data, "fill")
	_ = exec.Command("dd", "if=/dev/zero", "of="+fill, "bs=64k").Run() // until the disk is full
	// bbolt reuses the free pages its file has: journal entries until it needs more.
	line := "FULL-" + strings.Repeat("x", 3000)
	full := func() bool {
		out, _, _ := d.tend("ps", "-p", name)
		return strings.Contains(out, "STORE FULL")
	}
	for i := 0; !full(); i++ {
		if i == 300 {
			t.Fatal("300 journal entries of 3 KiB on a full disk, and the store never refused one")
		}
		post(t, name+"-web-1", "/log?line="+line)
		time.Sleep(20 * time.Millisecond)
	}
	docker(t, "kill", name+"-web-2")
	waitFor(t, 15*time.Second, "web-2 running again on a full disk", func() bool {
		return inspectGone(name+"-web-2", "{{.State.Status}}") == "running"
	})
	if !full() {
		t.Fatal("tend ps no longer says the store is full, with the disk still full")
	}
	if _, ok := findEvent(d.events(name), "web", "restart", "exited"); ok {
		t.Fatal("the restart's entry reached the journal on a full disk")
	}
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the held entry written once space returned", func() bool {
		_, ok := findEvent(d.events(name), "web", "restart", "exited")
		return ok
	})
	out, _, _ := d.tend("events", "--json", "-n", "0")
	if !strings.Contains(out, `"action":"journal-resumed"`) {
		t.Errorf("no journal-resumed entry closing the spell:\n%s", out)
	}
	if full() {
		t.Error("tend ps still says the store is full once space returned")
	}
}

// frozenStack has no health check: a replica's readiness is tend's TCP
// connect to its port, which a stopped process passes (its kernel accepts).
const frozenStack = `
services:
  back:
    image: tend-demo:dev
    ports: ["127.0.0.1:%d:8080"]
    deploy:
      replicas: 2
`

// A replica whose processes are stopped (`tend chaos sick`: SIGSTOP; the
// engine says running, the kernel still accepts connections, so its TCP
// readiness passes) is found hung by tend's proxy from the requests it
// leaves waiting, taken out of rotation and replaced; the GETs that waited
// on it are answered by its sibling, so none fails.
func TestFrozenReplicaIsReplaced(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	port := freePort(t)
	name, _ := d.up(fmt.Sprintf(frozenStack, port))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	l := startLoadOf(url, "GET", func() *http.Client { return &http.Client{Timeout: 10 * time.Second} }, 4)
	time.Sleep(time.Second)
	out, stderr, code := d.tend("chaos", "sick", "-p", name, "--service", "back", "--json")
	ok, failed, errors := l.finish()
	if code != 0 {
		t.Fatalf("tend chaos sick: exit %d: %s %s", code, stderr, out)
	}
	var r chaosReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Faults) != 1 {
		t.Fatalf("tend chaos sick --json: %v\n%s", err, out)
	}
	f := r.Faults[0]
	var acts []string
	for _, e := range f.Entries {
		acts = append(acts, e.Action+"/"+e.Reason)
	}
	if f.Recovered.IsZero() || !slices.Contains(acts, "eject/hung") || !slices.Contains(acts, "replace/hung") {
		t.Errorf("fault %+v: entries %v, want eject/hung and replace/hung, then ready again", f, acts)
	}
	if !r.After.Converged || len(r.After.Duplicates)+len(r.After.Orphans) != 0 {
		t.Errorf("after %+v, want converged with no duplicate or orphan", r.After)
	}
	t.Logf("ready again %s after the fault (%v); %d GETs answered, %d failed", f.Recovered.Sub(f.At).Round(time.Millisecond), acts, ok, failed)
	if failed > 0 {
		t.Errorf("%d of %d GETs failed while a replica was frozen: %v", failed, ok+failed, errors)
	}
}
