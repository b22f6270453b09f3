package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// slotSample is one slot as `tend ps --json` showed it at one moment.
type slotSample struct {
	Slot      int       `json:"slot"`
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Ready     bool      `json:"ready"`
	StartedAt time.Time `json:"started_at"`
	Note      string    `json:"note"`
}

type psSample struct {
	at    time.Time
	slots []slotSample
}

// sampler polls `tend ps` until stopped. It must not fail the test from its
// goroutine: a failed poll is only left out.
type sampler struct {
	mu      sync.Mutex
	samples []psSample
	stop    chan struct{}
	done    chan struct{}
}

func startSampler(d *daemon, project string) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			at := time.Now()
			out, _, code := d.tend("ps", "--json", "-p", project)
			var slots []slotSample
			if code != 0 || json.Unmarshal([]byte(out), &slots) != nil {
				continue
			}
			s.mu.Lock()
			s.samples = append(s.samples, psSample{at: at, slots: slots})
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sampler) finish() []psSample {
	close(s.stop)
	<-s.done
	return s.samples
}

// readySince is when the samples first showed the run of slot that started at
// started ready, or zero.
func readySince(samples []psSample, slot int, id string, started time.Time) time.Time {
	for _, p := range samples {
		for _, r := range p.slots {
			if r.Slot == slot && r.ID == id && r.StartedAt.Equal(started) && r.Ready && r.State == "running" {
				return p.at
			}
		}
	}
	return time.Time{}
}

// runAt is the run the slot was in at t, by the last sample before it.
func runAt(samples []psSample, slot int, t time.Time) (slotSample, bool) {
	var last slotSample
	found := false
	for _, p := range samples {
		if p.at.After(t) {
			break
		}
		for _, r := range p.slots {
			if r.Slot == slot && r.State == "running" {
				last, found = r, true
			} else if r.Slot == slot {
				found = false
			}
		}
	}
	return last, found
}

type kill struct {
	at   time.Time
	slot int
}

// backoffWait is how `tend ps` notes a slot waiting out a crash backoff.
var backoffWait = regexp.MustCompile(`restart \d+ in `)

// Issue 13's schedule: a replica picked at random among the running ones is
// killed every 2 s for 12 s, four rounds 3 s apart. A replica tend had seen
// ready is restarted at once, not counted as a crash, so the backoff never
// grows; and tend never keeps a replica waiting on a backoff while no
// replica serves.
func TestOutsideKillsDoNotGrowTheBackoff(t *testing.T) {
	// Not parallel: alone on the host (harness_test.go, "Tests that load the host").
	d := startDaemon(t)
	port := freePort(t)
	name, _ := d.up(fmt.Sprintf(`
services:
  web:
    image: tend-demo:dev
    ports: ["%d:8080"]
    healthcheck:
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 1s
      retries: 2
    deploy:
      replicas: 3
`, port))
	s := startSampler(d, name)
	var kills []kill
	for round := range 4 {
		if round > 0 {
			time.Sleep(3 * time.Second)
		}
		for range 6 {
			at := time.Now()
			if victim, ok := killRandomRunning(t, name); ok {
				slot, _ := strconv.Atoi(victim[strings.LastIndex(victim, "-")+1:])
				kills = append(kills, kill{at: at, slot: slot})
			}
			time.Sleep(2 * time.Second)
		}
	}
	waitFor(t, time.Minute, "3 ready replicas after the last kill", func() bool {
		n := 0
		for _, r := range d.ps(name) {
			if r.Ready {
				n++
			}
		}
		return n == 3
	})
	samples := s.finish()
	es := d.events(name)

	// Each kill of a replica tend had shown ready for half a second (time
	// enough for its planner to have seen it so too) is restarted at once.
	readyKills := 0
	for _, k := range kills {
		run, ok := runAt(samples, k.slot, k.at)
		since := readySince(samples, k.slot, run.ID, run.StartedAt)
		if !ok || since.IsZero() || k.at.Sub(since) < 500*time.Millisecond {
			continue // killed before it was (surely) ready: it may count as a crash
		}
		readyKills++
		// Healed by a restart, or by a standby already starting (its health
		// check failed as it died: make test, 2026-12-07 23:26 UTC) that
		// takes over: neither counts as a crash.
		var restart *entry
		for i, e := range es {
			if (e.Action == "restart" || e.Action == "takeover") && e.Slot == k.slot && e.Time.After(k.at) {
				restart = &es[i]
				break
			}
		}
		switch {
		case restart != nil && restart.Action == "takeover":
		case restart == nil:
			t.Errorf("web/%d killed at %s (ready since %s): no restart or takeover in the journal", k.slot, k.at.Format("15:04:05.000"), since.Format("15:04:05.000"))
		case !strings.Contains(restart.Message, "killed from outside (signal 9) after a healthy run; not counted as a crash"):
			t.Errorf("web/%d killed at %s (ready since %s) was restarted as a crash: %q", k.slot, k.at.Format("15:04:05.000"),
				since.Format("15:04:05.000"), restart.Message)
		}
	}
	if readyKills < len(kills)/3 {
		t.Errorf("only %d of %d kills hit a replica that had been ready for 0.5 s: the schedule tested too little", readyKills, len(kills))
	}

	// tend is never the reason nothing serves.
	fewest, waiting := 3, 0
	for _, p := range samples {
		ready, backingOff := 0, []string{}
		for _, r := range p.slots {
			if r.Ready {
				ready++
			}
			if backoffWait.MatchString(r.Note) {
				backingOff = append(backingOff, fmt.Sprintf("web/%d: %s", r.Slot, r.Note))
			}
		}
		fewest = min(fewest, ready)
		if len(backingOff) > 0 {
			waiting++
		}
		if ready == 0 && len(backingOff) > 0 {
			t.Errorf("at %s no replica was ready while tend held one back: %s", p.at.Format("15:04:05.000"), strings.Join(backingOff, "; "))
		}
	}
	crashes := 0
	for _, e := range es {
		if e.Action == "restart" && strings.Contains(e.Message, "of this streak") {
			crashes++
		}
	}
	t.Logf("%d kills, %d of them of a replica ready for 0.5 s; %d restarts counted as crashes; %d samples, fewest ready %d, %d samples with a slot in backoff",
		len(kills), readyKills, crashes, len(samples), fewest, waiting)
}

// A program that crash-loops still backs off, even when it dies with the
// code a kill leaves (137): it never became ready. Through the engine (its
// own exit looks like docker kill there) and in place (under tend's shim).
func TestCrashLoopWithAKillsExitCodeStillBacksOff(t *testing.T) {
	for _, mode := range []struct {
		name  string
		flags []string
	}{
		{"through the engine", []string{"--restart-in-place=false"}},
		{"in place", nil},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t, mode.flags...)
			name, file := d.project(`
services:
  flaky:
    image: tend-demo:dev
    command: ["-exit-after", "1s", "-exit-code", "137"]
    healthcheck: # never passes: the job serves nothing (and never unhealthy in the time this takes)
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 1s
      retries: 30
    deploy:
      restart_policy:
        max_attempts: 4
    x-tend:
      backoff: {initial: 200ms, max: 2s}
`)
			d.mustTend("up", "-f", file, "-p", name)
			waitFor(t, time.Minute, "tend to give up", func() bool {
				_, ok := findEvent(d.events(name), "flaky", "gave-up", "max-attempts")
				return ok
			})
			var restarts []entry
			for _, e := range d.events(name) {
				if e.Action == "restart" {
					restarts = append(restarts, e)
				}
			}
			if len(restarts) != 4 {
				t.Fatalf("want 4 restarts before giving up, got %d: %+v", len(restarts), restarts)
			}
			for i, e := range restarts {
				if !strings.Contains(e.Message, "exited with code 137") || !strings.Contains(e.Message, "counted as a crash") ||
					!strings.Contains(e.Message, fmt.Sprintf("restart %d of this streak", i+1)) {
					t.Errorf("restart %d: %q, want exit code 137 counted as a crash, restart %d of the streak", i+1, e.Message, i+1)
				}
			}
			// Each run lasts 1 s; the 4th restart waits about 800 ms (±10%) on top.
			if gap := restarts[3].Time.Sub(restarts[2].Time); gap < 1500*time.Millisecond {
				t.Errorf("the 4th restart came %s after the 3rd: no backoff", gap)
			}
		})
	}
}
