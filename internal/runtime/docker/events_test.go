package docker

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/shim"
)

func newTestAdapter() *Docker {
	return &Docker{inspected: map[string]cached{}, holds: map[string]*held{}, runStarted: map[string]time.Time{},
		oomed: map[string]bool{}, checks: map[string]bool{}}
}

// cacheRunning caches id as a running container started at started, as an inspect would.
func (d *Docker) cacheRunning(id string, started time.Time) {
	d.inspected[id] = cached{state: container.StateRunning,
		c: runtime.Container{ID: id, State: runtime.Running, StartedAt: started}}
}

func engineEvent(id, action string, at time.Time, attrs map[string]string) events.Message {
	return events.Message{Action: events.Action(action), Actor: events.Actor{ID: id, Attributes: attrs}, TimeNano: at.UnixNano()}
}

// The planner tells a kill from outside from an OOM kill by OOMKilled: the
// die event does not say, the oom event before it does, even when a List
// cached the container again in between.
func TestExitFromTheDieEventCarriesTheOOMKill(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		events []string
		oom    bool
	}{
		{"docker kill", []string{"kill", "die"}, false},
		{"OOM kill", []string{"oom", "die"}, true},
		{"an OOM kill in an earlier run", []string{"oom", "die", "start", "kill", "die"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestAdapter()
			d.cacheRunning("c1", t0)
			for i, a := range tc.events {
				at := t0.Add(time.Duration(i+1) * time.Second)
				d.note(engineEvent("c1", a, at, map[string]string{"exitCode": "137"}), a)
				if _, ok := d.inspected["c1"]; !ok && a != "die" {
					d.cacheRunning("c1", at) // the next List inspects it again: it still runs
				}
			}
			e, ok := d.inspected["c1"]
			if !ok {
				t.Fatal("the exit is not cached: the next List would wait for an inspect")
			}
			if e.c.State != runtime.Exited || e.c.ExitCode != 137 || e.c.OOMKilled != tc.oom || e.c.Held {
				t.Errorf("got %s code %d oom %v held %v, want exited 137 oom %v", e.c.State, e.c.ExitCode, e.c.OOMKilled, e.c.Held, tc.oom)
			}
		})
	}
}

// A held exit is the command's own; once the container itself dies (docker
// kill while tend holds the exit), it is the container's again.
func TestHeldExitIsMarkedUntilTheContainerDies(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	d := newTestAdapter()
	d.cacheRunning("c1", t0)
	d.noteOOM("c1")
	d.cacheRunning("c1", t0)
	d.hold("c1", &held{exit: shim.Exit{Code: 137, Started: t0, Finished: t0.Add(time.Second)}})
	if e := d.inspected["c1"].c; !e.Held || e.OOMKilled || e.State != runtime.Exited {
		t.Errorf("held exit: %+v, want exited, held, and no OOM verdict of the engine's", e)
	}
	d.note(engineEvent("c1", "die", t0.Add(2*time.Second), map[string]string{"exitCode": "137"}), "die")
	if e := d.inspected["c1"].c; e.Held || !e.OOMKilled {
		t.Errorf("after the container died: %+v, want not held, and the engine's OOM report", e)
	}
}

// A kill event carries its signal, which tells a stop from a reload.
func TestKillEventCarriesItsSignal(t *testing.T) {
	for _, tc := range []struct {
		action, signal string
		want           int
	}{{"kill", "9", 9}, {"kill", "1", 1}, {"kill", "", 0}, {"die", "9", 0}} {
		e := eventOf(engineEvent("c1", tc.action, time.Now(), map[string]string{"signal": tc.signal}), tc.action)
		if e.Signal != tc.want || e.Container != "c1" || e.Action != tc.action {
			t.Errorf("%s signal %q: got %+v, want signal %d", tc.action, tc.signal, e, tc.want)
		}
	}
}
