package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// get is one GET with Host set (for an in-stack address), its status,
// body and how long it took.
func getHost(t *testing.T, url, host string) (int, string, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), time.Since(start)
}

func countEvents(es []entry, service, action string) int {
	n := 0
	for _, e := range es {
		if e.Service == service && e.Action == action {
			n++
		}
	}
	return n
}

func waitEvent(t *testing.T, d *daemon, project, service, action, reason string, timeout time.Duration) entry {
	t.Helper()
	var found entry
	waitFor(t, timeout, fmt.Sprintf("%s/%s of %s in the journal", action, reason, service), func() bool {
		e, ok := findEvent(d.events(project), service, action, reason)
		found = e
		return ok
	})
	return found
}

func gatewayOf(t *testing.T, network string) string {
	t.Helper()
	return docker(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", network)
}

// TestServiceThatCannotStartIsQuarantined: a service whose command cannot
// start is quarantined within its budget (5 failed repairs), its restarts
// stop, its container is kept for inspection, its published port and its
// in-stack address answer the fallback in under 100 ms, and `tend up`
// with a fixed command restores it.
func TestServiceThatCannotStartIsQuarantined(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	port := freePort(t)
	compose := `
services:
  pay:
    image: tend-demo:dev
    %s
    ports: ["127.0.0.1:%d:8080"]
    x-tend:
      quarantine: {retry: 1h}
      fallback:
        status: 503
        body: "payments are down, try later"
        headers: {Content-Type: text/plain}
`
	name, file := d.project(fmt.Sprintf(compose, `command: ["-no-such-flag"]`, port))
	start := time.Now()
	d.mustTend("up", "-f", file, "-p", name)
	q := waitEvent(t, d, name, "pay", "quarantine", "repairs-failed", 60*time.Second)
	took := time.Since(start)
	es := d.events(name)
	restarts := countEvents(es, "pay", "restart")
	if restarts > 5 {
		t.Errorf("%d restarts before the quarantine, want at most the budget of 5", restarts)
	}
	t.Logf("quarantined %.1fs after up, after %d restarts: %s", took.Seconds(), restarts, q.Message)

	// Answered at once: each GET well inside the 2 s hold, their median
	// under 100 ms. One GET's wall time is the host's as much as tend's
	// (114 ms once in make test, 2026-12-07 22:20 UTC, -race tests side by
	// side); the median of a dozen is tend's.
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	gw := gatewayOf(t, name+"_default")
	var lats []time.Duration
	fallback := func(where, url, host string) {
		code, body, lat := getHost(t, url, host)
		if code != 503 || body != "payments are down, try later" || lat > time.Second {
			t.Fatalf("%s: %d %q in %s, want 503 with the fallback at once", where, code, body, lat)
		}
		lats = append(lats, lat)
	}
	fallback("published port", url, "")
	fallback("in-stack address "+gw+":8080", fmt.Sprintf("http://%s:8080/", gw), "pay")

	// No more restarts, and the broken container is kept stopped: its logs tell why.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		fallback("while quarantined", url, "")
	}
	slices.Sort(lats)
	if m := lats[len(lats)/2]; m > 100*time.Millisecond {
		t.Errorf("the fallback's median latency %s over %d GETs, want under 100ms (all: %v)", m, len(lats), lats)
	}
	if n := countEvents(d.events(name), "pay", "restart"); n != restarts {
		t.Errorf("restarts went on while quarantined: %d, then %d", restarts, n)
	}
	if st := docker(t, "inspect", "-f", "{{.State.Status}}", name+"-pay-1"); st != "exited" {
		t.Errorf("the quarantined container is %s, want exited (kept for inspection)", st)
	}
	if logs, _ := execOut("docker", "logs", name+"-pay-1"); !strings.Contains(logs, "no-such-flag") {
		t.Errorf("docker logs of the quarantined container: %q, want the reason it failed", logs)
	}
	if out := d.mustTend("ps", "-p", name); !strings.Contains(out, "quarantined") || !strings.Contains(out, "next trial at") {
		t.Errorf("tend ps:\n%s\nwant quarantined with the next trial", out)
	}

	// A fixed command: `tend up` lifts it.
	if err := os.WriteFile(file, []byte(ownImage(fmt.Sprintf(compose, "", port))), 0o644); err != nil {
		t.Fatal(err)
	}
	d.mustTend("up", "-f", file, "-p", name, "--wait")
	waitEvent(t, d, name, "pay", "restore", "spec-changed", 10*time.Second)
	waitFor(t, 10*time.Second, "pay answering 200", func() bool { code, _, _ := getHost(t, url, ""); return code == 200 })
}

func execOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestSuccessfulTrialRestores: a service that cannot start until something
// outside it is fixed is quarantined; once fixed, the next half-open trial
// restores it on its own.
func TestSuccessfulTrialRestores(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	port := freePort(t)
	dir := t.TempDir()
	name, file := d.project(fmt.Sprintf(`
services:
  pay:
    image: tend-demo:dev
    environment: {DEMO_REQUIRE: /state/ok}
    volumes: ["%s:/state"]
    ports: ["127.0.0.1:%d:8080"]
    x-tend:
      quarantine: {after: 3, retry: 2s, probation: 2s}
`, dir, port))
	d.mustTend("up", "-f", file, "-p", name)
	waitEvent(t, d, name, "pay", "quarantine", "repairs-failed", 60*time.Second)
	// The first trial fails: nothing is fixed yet.
	waitEvent(t, d, name, "pay", "quarantine", "trial-failed", 30*time.Second)
	if err := os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, d, name, "pay", "restore", "probation-passed", 60*time.Second)
	t.Logf("restored: %s", e.Message)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitFor(t, 5*time.Second, "pay answering 200", func() bool { code, _, _ := getHost(t, url, ""); return code == 200 })
	if _, ok := findEvent(d.events(name), "pay", "trial", "retry"); !ok {
		t.Error("no trial in the journal")
	}
}

// TestBreakerTripsAndRecovers: a service that starts answering 500, or
// slowly, trips the request breaker: callers get the fallback at once;
// once it answers well again, half-open trials close the breaker. (Until
// 2026-12-07 the slow case took 5 s a request. A replica silent that long
// with requests waiting is now found hung by the proxy and replaced, a race
// with the breaker's latency verdict: TestFrozenReplicaIsReplaced has that
// story. 1 s a request is slow, not hung, and more than the 300 ms limit.)
func TestBreakerTripsAndRecovers(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	port := freePort(t)
	name, _ := d.up(fmt.Sprintf(`
services:
  back:
    image: tend-demo:dev
    ports: [{target: 8080, published: "%d", host_ip: 127.0.0.1, app_protocol: http}]
    x-tend:
      breaker: {latency: 300ms, open: 1s}
      fallback: {status: 503, body: "back is resting"}
`, port))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	container := name + "-back-1"
	for _, fault := range []struct{ name, path, reason string }{
		{"500s", "/fail", "error-ratio"},
		{"slow", "/slow?ms=1000", "latency"},
	} {
		t.Run(fault.name, func(t *testing.T) {
			before := countEvents(d.events(name), "back", "breaker-open")
			l := startLoad(url, 8)
			defer l.finish()
			time.Sleep(500 * time.Millisecond)
			post(t, container, fault.path)
			waitFor(t, 20*time.Second, "breaker-open/"+fault.reason, func() bool {
				es := d.events(name)
				if countEvents(es, "back", "breaker-open") <= before {
					return false
				}
				e := es[len(es)-1]
				for i := len(es) - 1; i >= 0; i-- {
					if es[i].Action == "breaker-open" {
						e = es[i]
						break
					}
				}
				if e.Reason != fault.reason {
					t.Fatalf("breaker opened for %s (%s), want %s", e.Reason, e.Message, fault.reason)
				}
				return true
			})
			code, body, lat := getHost(t, url, "")
			if code != 503 || body != "back is resting" || lat > 100*time.Millisecond {
				t.Errorf("while open: %d %q in %s, want the fallback at once", code, body, lat)
			}
			closes := countEvents(d.events(name), "back", "breaker-close")
			post(t, container, "/heal")
			waitFor(t, 30*time.Second, "breaker-close", func() bool { return countEvents(d.events(name), "back", "breaker-close") > closes })
			waitFor(t, 5*time.Second, "back answering 200", func() bool { code, _, _ := getHost(t, url, ""); return code == 200 })
		})
	}
}
