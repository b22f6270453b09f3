package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// timedLoad is a closed-loop load that keeps each answer's end and latency,
// so a test can read the p95 clients saw over any span.
type timedLoad struct {
	mu      sync.Mutex
	answers []answer
	wg      sync.WaitGroup
	stop    chan struct{}
}

type answer struct {
	at  time.Time
	lat time.Duration
	err string // empty: 200 OK
}

func startTimedLoad(url string, workers int) *timedLoad {
	l := &timedLoad{stop: make(chan struct{})}
	for range workers {
		client := &http.Client{Timeout: 5 * time.Second}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				resp, err := client.Get(url)
				a := answer{}
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						a.err = fmt.Sprintf("HTTP %d", resp.StatusCode)
					}
				} else {
					a.err = err.Error()
				}
				a.at, a.lat = time.Now(), time.Since(start)
				l.mu.Lock()
				l.answers = append(l.answers, a)
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *timedLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// p95 is the 95th percentile latency of the answers that ended after since, and their count.
func (l *timedLoad) p95(since time.Time) (time.Duration, int) {
	l.mu.Lock()
	var lats []time.Duration
	for _, a := range l.answers {
		if a.at.After(since) {
			lats = append(lats, a.lat)
		}
	}
	l.mu.Unlock()
	if len(lats) == 0 {
		return 0, 0
	}
	slices.Sort(lats)
	return lats[len(lats)*95/100], len(lats)
}

func (l *timedLoad) failures() (n int, first []string) { return l.failuresSince(time.Time{}) }

// failuresSince counts the requests that failed after since.
func (l *timedLoad) failuresSince(since time.Time) (n int, first []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.answers {
		if a.err != "" && a.at.After(since) {
			n++
			if len(first) < 5 {
				first = append(first, a.at.Format("15:04:05.000 ")+a.err)
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
			l := startTimedLoad(fmt.Sprintf("http://127.0.0.1:%d/", port), 32)
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
	l := startTimedLoad(fmt.Sprintf("http://127.0.0.1:%d/", port), 32)
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
