package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// rolloutStack is a web service of the demo behind tend's proxy, with a
// liveness probe; version names what GET / answers, extra is more of its
// service's keys (indented by 4).
func rolloutStack(port, replicas int, version, env, extra string) string {
	return fmt.Sprintf(`
services:
  web:
    image: tend-demo:dev
    environment: {DEMO_NAME: %s%s}
    deploy:
      replicas: %d
    ports: [{target: 8080, published: "%d", host_ip: 127.0.0.1, app_protocol: http}]
    x-tend:
      liveness:
        http: {port: 8080, path: /health}
        interval: 500ms
        failure_threshold: 2
%s`, version, env, replicas, port, extra)
}

// rollTo writes a new compose file over file and runs tend up with it.
func rollTo(t *testing.T, d *daemon, name, file, compose string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(ownImage(compose)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.mustTend("up", "-f", file, "-p", name)
}

// versionsAnswering is the set of DEMO_NAMEs that n fresh GETs of url got.
func versionsAnswering(t *testing.T, url string, n int) []string {
	t.Helper()
	seen := map[string]bool{}
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		var body struct{ Name string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		seen[body.Name] = true
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// containerHashes are the spec hashes of the project's containers, running or not, one per container.
func containerHashes(t *testing.T, project string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=io.tend.project="+project,
		"--format", `{{.Label "io.tend.hash"}}`).Output()
	if err != nil {
		t.Fatal(err)
	}
	hs := strings.Fields(string(out))
	sort.Strings(hs)
	return hs
}

// waitRolled waits for the service's rollout (or rollback) to end in the journal after seq.
func waitRolled(t *testing.T, d *daemon, name, action string, after uint64, timeout time.Duration) entry {
	t.Helper()
	var found entry
	waitFor(t, timeout, action+" done", func() bool {
		for _, e := range d.events(name) {
			if e.Seq > after && e.Service == "web" && e.Action == action && e.Reason == "done" {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// logJournal logs the project's journal after seq, for reading a rollout's pace.
func logJournal(t *testing.T, d *daemon, name string, after uint64) {
	t.Helper()
	for _, e := range d.events(name) {
		if e.Seq > after && e.Action != "ready" && e.Action != "unready" {
			t.Logf("%s %s/%d %s %s: %s %s", e.Time.Format("15:04:05.000"), e.Service, e.Slot, e.Action, e.Reason, e.Message, e.Error)
		}
	}
}

func lastSeq(d *daemon, name string) uint64 {
	es := d.events(name)
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].Seq
}

func checkNoFailures(t *testing.T, l *load) {
	t.Helper()
	ok, failed, errs := l.finish()
	t.Logf("load: %d ok, %d failed", ok, failed)
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the rollout: %v", failed, ok+failed, errs[:min(len(errs), 5)])
	}
	if ok < 100 {
		t.Errorf("only %d requests answered: the load did not run", ok)
	}
}

// TestRolloutGoodUpdateUnderLoad: a changed environment rolls out replica by
// replica, start-first, with no failed request, and the journal tells the steps.
func TestRolloutGoodUpdateUnderLoad(t *testing.T) {
	d := startDaemon(t)
	port := freePort(t)
	name, file := d.up(rolloutStack(port, 3, "v1", "", ""))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	seq := lastSeq(d, name)
	l := startLoad(url, 4)
	rollTo(t, d, name, file, rolloutStack(port, 3, "v2", "", ""))
	waitFor(t, 20*time.Second, "a rollout in tend ps", func() bool {
		out := d.mustTend("ps", "-p", name)
		return strings.Contains(out, "rolling out to")
	})
	done := waitRolled(t, d, name, "rollout", seq, 90*time.Second)
	checkNoFailures(t, l)
	t.Logf("%s", done.Message)
	logJournal(t, d, name, seq)
	if got := versionsAnswering(t, url, 20); strings.Join(got, ",") != "v2" {
		t.Errorf("answering: %v, want v2 only", got)
	}
	if hs := containerHashes(t, name); len(hs) != 3 || hs[0] != hs[2] {
		t.Errorf("containers after the rollout: %v, want 3 of one spec", hs)
	}
	steps := 0
	for _, e := range d.events(name) {
		if e.Seq > seq && e.Action == "rollout-step" && e.Reason == "step" {
			steps++
		}
	}
	if steps != 3 {
		t.Errorf("%d rollout steps in the journal, want 3 (one replica at a time)", steps)
	}
}

// badRelease rolls a 3-replica service from v1 to a bad v2 under load and
// checks that it rolls itself back, for the reason given, with no failed request.
func badRelease(t *testing.T, v1env, v2env, v2extra, reason string, workers int) {
	d := startDaemon(t)
	port := freePort(t)
	name, file := d.up(rolloutStack(port, 3, "v1", v1env, ""))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	seq := lastSeq(d, name)
	l := startLoad(url, workers)
	time.Sleep(2 * time.Second) // the proxy's figures of the old replicas fill
	start := time.Now()
	if err := os.WriteFile(file, []byte(ownImage(rolloutStack(port, 3, "v2", v2env, v2extra))), 0o644); err != nil {
		t.Fatal(err)
	}
	// up --wait returns once the stack is ready again, and says the release was rolled back.
	out, errOut, code := d.tend("up", "-f", file, "-p", name, "--wait")
	if code != 6 || !strings.Contains(errOut, "was rolled back") {
		t.Errorf("tend up --wait of a bad release: exit %d, want 6 with the rollback named\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	back := waitEvent(t, d, name, "web", "rollback", reason, 90*time.Second)
	t.Logf("rollback after %s: %s", time.Since(start).Round(100*time.Millisecond), back.Message)
	done := waitRolled(t, d, name, "rollback", seq, 90*time.Second)
	t.Logf("%s (%s after tend up)", done.Message, time.Since(start).Round(100*time.Millisecond))
	logJournal(t, d, name, seq)
	checkNoFailures(t, l)
	if got := versionsAnswering(t, url, 20); strings.Join(got, ",") != "v1" {
		t.Errorf("answering: %v, want v1 only", got)
	}
	if hs := containerHashes(t, name); len(hs) != 3 || hs[0] != hs[2] {
		t.Errorf("containers after the rollback: %v, want 3 of one spec", hs)
	}
	for _, r := range d.ps(name) {
		if !r.Ready {
			t.Errorf("%s not ready after the rollback (%s)", r.Container, r.State)
		}
	}
}

// TestRolloutExitOnStartRollsBack: a release whose process exits at once
// never takes over; the service rolls back to the old spec on its own.
func TestRolloutExitOnStartRollsBack(t *testing.T) {
	badRelease(t, "", "", `    command: ["-exit-after", "100ms", "-exit-code", "1"]
`, "exited", 4)
}

// TestRolloutSickAfterStartRollsBack: a release that turns sick a few
// seconds after it starts fails its monitor period and is rolled back.
func TestRolloutSickAfterStartRollsBack(t *testing.T) {
	badRelease(t, "", ", DEMO_SICK_AFTER: 3s", "", "liveness", 4)
}

// TestRolloutSlowerRollsBack: a release 10x slower than the old one (20ms
// to 200ms per request) is clearly worse through the proxy and is rolled back.
func TestRolloutSlowerRollsBack(t *testing.T) {
	badRelease(t, ", DEMO_DELAY: 20ms", ", DEMO_DELAY: 200ms", "", "latency", 8)
}

// TestRolloutContinuesAfterTendKilled: tend SIGKILLed in the middle of a
// rollout continues it when it starts again: no duplicate, no replica
// left on the old spec.
func TestRolloutContinuesAfterTendKilled(t *testing.T) {
	d := startDaemon(t)
	port := freePort(t)
	name, file := d.up(rolloutStack(port, 3, "v1", "", ""))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	seq := lastSeq(d, name)
	rollTo(t, d, name, file, rolloutStack(port, 3, "v2", "", ""))
	waitFor(t, 30*time.Second, "step 2 begun", func() bool {
		for _, e := range d.events(name) {
			if e.Seq > seq && e.Action == "rollout-step" && strings.HasPrefix(e.Message, "step 2") {
				return true
			}
		}
		return false
	})
	d.kill()
	d.start()
	done := waitRolled(t, d, name, "rollout", seq, 90*time.Second)
	t.Logf("%s", done.Message)
	if hs := containerHashes(t, name); len(hs) != 3 || hs[0] != hs[2] {
		t.Errorf("containers after the rollout: %v, want 3 of one spec", hs)
	}
	waitFor(t, 10*time.Second, "v2 answering", func() bool {
		return strings.Join(versionsAnswering(t, url, 10), ",") == "v2"
	})
}

// TestRolloutSupersededByUp: tend up during a rollout rolls to the newest
// spec from where the first got to.
func TestRolloutSupersededByUp(t *testing.T) {
	d := startDaemon(t)
	port := freePort(t)
	name, file := d.up(rolloutStack(port, 3, "v1", "", ""))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	seq := lastSeq(d, name)
	l := startLoad(url, 4)
	rollTo(t, d, name, file, rolloutStack(port, 3, "v2", "", ""))
	waitEvent(t, d, name, "web", "rollout-step", "step", 30*time.Second)
	rollTo(t, d, name, file, rolloutStack(port, 3, "v3", "", ""))
	waitEvent(t, d, name, "web", "rollout", "superseded", 30*time.Second)
	waitRolled(t, d, name, "rollout", seq, 90*time.Second)
	checkNoFailures(t, l)
	if got := versionsAnswering(t, url, 20); strings.Join(got, ",") != "v3" {
		t.Errorf("answering: %v, want v3 only", got)
	}
	if hs := containerHashes(t, name); len(hs) != 3 || hs[0] != hs[2] {
		t.Errorf("containers: %v, want 3 of one spec", hs)
	}
}

// TestRollbackByHand: tend rollback SERVICE returns a service to the spec it
// ran before, replica by replica, with no failed request.
func TestRollbackByHand(t *testing.T) {
	d := startDaemon(t)
	port := freePort(t)
	name, file := d.up(rolloutStack(port, 2, "v1", "", ""))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	seq := lastSeq(d, name)
	rollTo(t, d, name, file, rolloutStack(port, 2, "v2", "", ""))
	waitRolled(t, d, name, "rollout", seq, 60*time.Second)
	seq = lastSeq(d, name)
	l := startLoad(url, 4)
	out := d.mustTend("rollback", "web", "-p", name)
	t.Logf("tend rollback: %s", strings.TrimSpace(out))
	waitRolled(t, d, name, "rollback", seq, 60*time.Second)
	checkNoFailures(t, l)
	if got := versionsAnswering(t, url, 20); strings.Join(got, ",") != "v1" {
		t.Errorf("answering: %v, want v1 only", got)
	}
	if _, _, code := d.tend("rollback", "nosuch", "-p", name); code == 0 {
		t.Error("tend rollback of an unknown service succeeded")
	}
}
