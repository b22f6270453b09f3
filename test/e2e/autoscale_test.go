package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// timedLoad is the demo's load mode (-load) in a process of its own: closed-
// loop clients without the race detector, whose per-second lines say how
// many requests were answered, their p95, and when any failed. Run inside
// the -race test binary, 32 clients took enough of the 2 cores that they
// saw p95 79 ms where tend's proxy measured 37 ms (CI, 2026-12-07 22:50
// UTC, 8 replicas of a 20 ms service): they measured the host.
type timedLoad struct {
	t       *testing.T
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	seconds []loadSecond
	rest    []string // lines that are not a second's
}

// loadSecond is one line of the load mode: the second before at.
type loadSecond struct {
	at       time.Time
	ok       int
	failed   int
	from, to time.Time // the first and last failure
	first    string    // the first failure's error
	p95      time.Duration
}

var loadLine = regexp.MustCompile(`^load +\d+s: +(\d+) ok, (\d+) failed(?: \((\S+) to (\S+), first: (.*)\))?, p95 (\S+)$`)

func startTimedLoad(t *testing.T, url string, clients int) *timedLoad {
	t.Helper()
	l := &timedLoad{t: t, done: make(chan struct{})}
	l.cmd = exec.Command(demoBin, "-load", url, "-clients", strconv.Itoa(clients), "-for", "1h")
	out, err := l.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	l.cmd.Stderr = l.cmd.Stdout
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("start the load: %v", err)
	}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.read(sc.Text(), time.Now())
		}
	}()
	t.Cleanup(l.finish)
	return l
}

func (l *timedLoad) read(line string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := loadLine.FindStringSubmatch(line)
	if m == nil {
		l.rest = append(l.rest, line)
		return
	}
	s := loadSecond{at: at, first: m[5]}
	s.ok, _ = strconv.Atoi(m[1])
	s.failed, _ = strconv.Atoi(m[2])
	s.from, s.to = timeOfDay(m[3], at), timeOfDay(m[4], at)
	s.p95, _ = time.ParseDuration(m[6])
	l.seconds = append(l.seconds, s)
}

// timeOfDay is the load mode's "15:04:05.000" as the moment at or just
// before at (a run may cross midnight).
func timeOfDay(s string, at time.Time) time.Time {
	c, err := time.ParseInLocation("15:04:05.000", s, at.Location())
	if err != nil {
		return time.Time{}
	}
	y, mo, d := at.Date()
	when := time.Date(y, mo, d, c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), at.Location())
	if when.After(at.Add(time.Minute)) {
		when = when.AddDate(0, 0, -1)
	}
	return when
}

// finish ends the load (SIGTERM: the load mode prints its total) and waits
// for its last line; once only.
func (l *timedLoad) finish() {
	if l.cmd.ProcessState != nil {
		return
	}
	l.cmd.Process.Signal(syscall.SIGTERM)
	<-l.done
	if err := l.cmd.Wait(); err != nil {
		l.t.Errorf("the load mode: %v; its other lines: %q", err, l.rest)
	}
}

// p95 is the clients' p95 over the last whole second that ended after
// since, and the requests it counts.
func (l *timedLoad) p95(since time.Time) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.seconds); n > 0 && l.seconds[n-1].at.After(since) {
		return l.seconds[n-1].p95, l.seconds[n-1].ok
	}
	return 0, 0
}

func (l *timedLoad) failures() (n int, first []string) { return l.failuresSince(time.Time{}) }

// failuresSince counts the requests that failed in the seconds whose last
// failure came after since: where one did, the whole second's count.
func (l *timedLoad) failuresSince(since time.Time) (n int, first []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.seconds {
		if s.failed > 0 && s.to.After(since) {
			n += s.failed
			if len(first) < 5 {
				first = append(first, fmt.Sprintf("%d from %s to %s, first: %s", s.failed,
					s.from.Format("15:04:05.000"), s.to.Format("15:04:05.000"), s.first))
			}
		}
	}
	return n, first
}

type scaleRow struct {
	Service  string `json:"service"`
	Current  int    `json:"current"`
	Desired  int    `json:"desired"`
	Min      int    `json:"min"`
	Max      int    `json:"max"`
	Auto     bool   `json:"auto"`
	Pinned   bool   `json:"pinned"`
	NoEffect string `json:"no_effect"`
	Metric   string `json:"metric"`
}

// counts reads the services' counts from `tend ps --json`.
func (d *daemon) counts(project string) map[string]scaleRow {
	d.t.Helper()
	var rows []struct {
		Scale *scaleRow `json:"scale"`
	}
	out := d.mustTend("ps", "--json", "-p", project)
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		d.t.Fatalf("tend ps --json: %v\n%s", err, out)
	}
	got := map[string]scaleRow{}
	for _, r := range rows {
		if r.Scale != nil {
			got[r.Scale.Service] = *r.Scale
		}
	}
	return got
}

const autoscaleStack = `
services:
  %s:
    image: tend-demo:dev
    command: [%s]
    ports: ["127.0.0.1:%d:8080"]
    healthcheck:
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 1s
    x-tend:
      autoscale: {min: 1, max: %d, p95: 50ms}
`

// TestAutoscaleScalesWhereItHelps is issue 14's pair: under the same load,
// a service whose replicas serve only 4 requests at once scales out until
// p95 is under target and back in after the load, failing no request; a
// service with a fixed 200 ms delay does not climb to max, goes back to min
// and journals no-effect.
func TestAutoscaleScalesWhereItHelps(t *testing.T) {
	// Not parallel: alone on the host (harness_test.go, "Tests that load the host").
	// max: the load-bound service's 32 clients fit 8 replicas of 4 at once;
	// at 6 (24 at once) the target sat 20 % over its queueing floor, and on
	// a loaded host (make test, 2026-12-07 17:45 UTC) tend reached max with
	// p95 still 55-74 ms. The fixed-delay service must not climb to its max.
	for _, c := range []struct {
		name, service, command string
		max                    int
	}{
		{"load-bound", "queue", `"-limit", "4", "-work", "20ms"`, 8},
		{"fixed-delay", "fixed", `"-delay", "200ms"`, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Not parallel: alone on the host (harness_test.go, "Tests that load the host").
			d := startDaemon(t)
			port := freePort(t)
			name, _ := d.up(fmt.Sprintf(autoscaleStack, c.service, c.command, port, c.max))
			l := startTimedLoad(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 32)
			stepped := time.Now()
			// most is the largest count the autoscaler chose. Not the running
			// containers: a standby started next to a replica whose check timed
			// out on a loaded host (CI, 2026-12-07 18:23 UTC) is a health
			// action, and counting it read as a climb to max.
			most := 1
			track := func() map[string]scaleRow {
				n := d.counts(name)
				most = max(most, n[c.service].Desired)
				return n
			}
			if c.service == "queue" {
				var figure string // tend's own p95, to tell the proxy's share from the host's
				defer func() {
					if t.Failed() {
						p, _ := l.p95(time.Now().Add(-2 * time.Second))
						t.Logf("at the end: clients' p95 %s, tend's figure %q, most replicas %d", p, figure, most)
					}
				}()
				waitFor(t, 60*time.Second, "p95 under 50ms after scaling out", func() bool {
					figure = track()[c.service].Metric
					p, n := l.p95(time.Now().Add(-2 * time.Second))
					return most > 1 && n > 50 && p < 50*time.Millisecond
				})
				p, _ := l.p95(time.Now().Add(-2 * time.Second))
				t.Logf("p95 %s at %d replicas, %s after the load step", p, most, time.Since(stepped).Round(100*time.Millisecond))
				time.Sleep(5 * time.Second) // steady under load
				l.finish()
				ended := time.Now()
				waitFor(t, 90*time.Second, "back to min after the load", func() bool {
					n := track()[c.service]
					return n.Desired == 1 && n.Current == 1
				})
				t.Logf("back to 1 replica %s after the load ended", time.Since(ended).Round(100*time.Millisecond))
				if failed, first := l.failures(); failed > 0 {
					t.Fatalf("%d requests failed while scaling out and in: %v", failed, first)
				}
				es := d.events(name)
				for _, want := range []string{"latency", "idle"} {
					if _, ok := findEvent(es, c.service, "scale", want); !ok {
						t.Errorf("no scale event with reason %s: %+v", want, es)
					}
				}
				if _, ok := findEvent(es, c.service, "scale", "no-effect"); ok {
					t.Errorf("a service that scaling helps was judged no-effect")
				}
				return
			}
			waitFor(t, 60*time.Second, "a no-effect verdict", func() bool {
				track()
				_, ok := findEvent(d.events(name), c.service, "scale", "no-effect")
				return ok
			})
			waitFor(t, 30*time.Second, "back to min", func() bool {
				n := track()[c.service]
				return n.Desired == 1 && n.Current == 1 && n.NoEffect != ""
			})
			held := time.Now()
			for time.Since(held) < 15*time.Second { // the load goes on: it stays at min
				if n := track()[c.service]; n.Desired != 1 {
					t.Fatalf("scaled out again to %d under the same load after no-effect", n.Desired)
				}
				time.Sleep(500 * time.Millisecond)
			}
			l.finish()
			e, _ := findEvent(d.events(name), c.service, "scale", "no-effect")
			t.Logf("most replicas %d; %s", most, e.Message)
			if most >= c.max {
				t.Fatalf("climbed to max (%d) though more replicas did not help", most)
			}
			if failed, first := l.failures(); failed > 0 {
				t.Fatalf("%d requests failed: %v", failed, first)
			}
		})
	}
}

// TestAutoscaleCountSurvivesUpAndRestart: the count the autoscaler chose is
// not reset by a `tend up` of the same file nor by a restart of tend; `tend
// scale SERVICE=N` pins it (the autoscaler leaves the service alone) until
// `tend scale SERVICE --auto`; no request fails along the way.
func TestAutoscaleCountSurvivesUpAndRestart(t *testing.T) {
	// Not parallel: alone on the host (harness_test.go, "Tests that load the host").
	d := startDaemon(t)
	port := freePort(t)
	name, file := d.up(fmt.Sprintf(autoscaleStack, "queue", `"-limit", "4", "-work", "20ms"`, port, 6))
	l := startTimedLoad(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 32)
	defer func() {
		if l != nil {
			l.finish()
		}
	}()
	var chosen int
	waitFor(t, 60*time.Second, "a scale-out, ready", func() bool {
		n := d.counts(name)["queue"]
		chosen = n.Desired
		return n.Desired > 1 && n.Current == n.Desired
	})
	d.mustTend("up", "-f", file, "-p", name, "--wait")
	if n := d.counts(name)["queue"]; n.Desired != chosen || !n.Auto {
		t.Fatalf("after tend up of the same file: %+v, want %d chosen by the autoscaler", n, chosen)
	}
	before, first := l.failures()
	if before > 0 {
		t.Fatalf("%d requests failed while scaling out: %v", before, first)
	}
	d.kill() // the proxy is tend's: its port is down until tend is back
	d.start()
	restarted := time.Now()
	if n := d.counts(name)["queue"]; n.Desired != chosen {
		t.Fatalf("after a restart of tend: desired %d, want %d", n.Desired, chosen)
	}

	d.mustTend("scale", "-p", name, "queue=2")
	waitFor(t, 30*time.Second, "2 replicas, pinned", func() bool {
		n := d.counts(name)["queue"]
		return n.Pinned && n.Desired == 2 && n.Current == 2
	})
	held := time.Now()
	for time.Since(held) < 5*time.Second { // latency is over target: only the pin keeps it at 2
		if n := d.counts(name)["queue"]; n.Desired != 2 {
			t.Fatalf("pinned at 2, the count moved to %d", n.Desired)
		}
		time.Sleep(500 * time.Millisecond)
	}
	d.mustTend("scale", "-p", name, "queue", "--auto")
	waitFor(t, 30*time.Second, "the autoscaler to scale out again", func() bool {
		n := d.counts(name)["queue"]
		return !n.Pinned && n.Desired > 2
	})
	l.finish()
	failed, first := l.failuresSince(restarted.Add(time.Second))
	l = nil
	if failed > 0 {
		t.Fatalf("%d requests failed after tend was back (pinned scale-in, scale-out): %v", failed, first)
	}
	if _, _, code := d.tend("scale", "-p", name, "queue=-1"); code == 0 {
		t.Errorf("tend scale queue=-1 succeeded")
	}
	if _, stderr, code := d.tend("scale", "-p", name, "nosuch=1"); code == 0 || !strings.Contains(stderr, "nosuch") {
		t.Errorf("tend scale of an unknown service: code %d, %s", code, stderr)
	}
}

// TestAutoscaleOnCPU: a worker with no port and a cpu target is scaled on
// the engine's CPU figures: out while its replica keeps a core busy (the
// demo's POST /burn), back to min once it idles. The target is low (20 %
// of a core) because on a busy 2-core host a burning replica gets only
// what the scheduler gives it.
func TestAutoscaleOnCPU(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  worker:
    image: tend-demo:dev
    x-tend:
      autoscale: {min: 1, max: 3, cpu: 20%}
`)
	var first string
	waitFor(t, 30*time.Second, "the worker running", func() bool {
		for _, r := range d.ps(name) {
			if r.Ready {
				first = r.Container
			}
		}
		return first != ""
	})
	post(t, first, "/burn?cores=1")
	burning := time.Now()
	waitFor(t, 60*time.Second, "scaled out for cpu", func() bool {
		return d.counts(name)["worker"].Desired > 1
	})
	t.Logf("scaled out %s after the burn began", time.Since(burning).Round(100*time.Millisecond))
	post(t, first, "/burn?cores=0")
	idle := time.Now()
	waitFor(t, 90*time.Second, "back to 1 replica once idle", func() bool {
		n := d.counts(name)["worker"]
		return n.Desired == 1 && n.Current == 1
	})
	t.Logf("back to 1 replica %s after the burn ended", time.Since(idle).Round(100*time.Millisecond))
	es := d.events(name)
	var cpu []string
	for _, e := range es {
		if e.Action == "scale" && e.Reason == "cpu" {
			cpu = append(cpu, e.Message)
		}
	}
	if len(cpu) < 2 || !strings.Contains(cpu[0], "cores per replica, target 0.20") {
		t.Errorf("scale entries for cpu %q, want one out and one in with the figures", cpu)
	}
}
