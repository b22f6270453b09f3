package docker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/tend-sh/tend/internal/runtime"
)

// What the adapter learns from the engine's event stream: exits (with the
// OOM kills before them) and health checks, cached so a pass need not ask.

// noteExit records a container's exit from its die event. Inspecting a
// container that has just died waits for the engine's clean-up of it (about
// 60 ms here); the event already tells the exit code and time, and the run's
// start is known from when it was running. That is what makes a crash
// restart quick.
func (d *Docker) noteExit(id string, m events.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.inspected[id]
	code, err := strconv.Atoi(m.Actor.Attributes["exitCode"])
	if !ok || e.c.StartedAt.IsZero() || err != nil {
		delete(d.inspected, id)
		return
	}
	e.c.State, e.c.ExitCode, e.c.Health = runtime.Exited, code, runtime.HealthNone
	e.c.FinishedAt = time.Unix(0, m.TimeNano)
	// The engine reports an OOM kill as an "oom" event before the "die"
	// (its events of one container are in order); the die does not say.
	e.c.OOMKilled = d.oomed[id]
	e.c.Held = false // the container itself ended, whatever the shim held
	e.state, e.health, e.died = container.StateExited, runtime.HealthNone, true
	d.inspected[id] = e
}

// noteOOM records the engine's report that the kernel's OOM killer killed a
// process of the container, so the exit that follows carries it (noteExit)
// although a List may cache the container again before the die.
func (d *Docker) noteOOM(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.oomed[id] = true
	delete(d.inspected, id)
}

// forget drops what is cached about a container; called on each of its events.
func (d *Docker) forget(id string) {
	d.mu.Lock()
	delete(d.inspected, id)
	d.mu.Unlock()
}

// Events streams engine events about tend's containers. Health-check exec
// events arrive every interval and change nothing tend looks at: they are dropped.
func (d *Docker) Events(ctx context.Context) (<-chan runtime.Event, <-chan error) {
	// What happened while no stream was open is unknown: forget it all.
	d.mu.Lock()
	clear(d.inspected)
	d.mu.Unlock()
	f := client.Filters{}.Add("type", string(events.ContainerEventType)).Add("label", runtime.LabelProject)
	res := d.c.Events(ctx, client.EventsListOptions{Filters: f})
	out := make(chan runtime.Event)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		defer close(errc)
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-res.Err:
				if ctx.Err() == nil {
					errc <- fmt.Errorf("docker: events: %w", err)
				}
				return
			case e := <-d.shimEvents:
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			case m := <-res.Messages:
				action := string(m.Action)
				if strings.HasPrefix(action, "exec_") {
					// Health checks run as execs: their results, read from the
					// events, tell a failing streak before the engine's verdict.
					if !d.noteExec(m, action) {
						continue
					}
				}
				d.note(m, action)
				e := eventOf(m, action)
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, errc
}

// eventOf is the engine's event as tend's.
func eventOf(m events.Message, action string) runtime.Event {
	e := runtime.Event{
		Project:   m.Actor.Attributes[runtime.LabelProject],
		Service:   m.Actor.Attributes[runtime.LabelService],
		Container: m.Actor.ID,
		Action:    action,
	}
	if action == "kill" {
		e.Signal, _ = strconv.Atoi(m.Actor.Attributes["signal"]) // the engine writes its number
	}
	return e
}

// note updates what is known of a container from one of its engine events.
func (d *Docker) note(m events.Message, action string) {
	switch action {
	case "exec_die": // the cache holds the new count
	case "die":
		d.noteExit(m.Actor.ID, m)
	case "start", "destroy":
		d.mu.Lock()
		delete(d.runStarted, m.Actor.ID) // started afresh by the engine, or gone
		delete(d.oomed, m.Actor.ID)
		d.mu.Unlock()
		d.forget(m.Actor.ID)
	case "oom":
		d.noteOOM(m.Actor.ID)
	default:
		d.forget(m.Actor.ID)
	}
}

// checkCommand is how exec events name a health check's command.
func checkCommand(h *container.HealthConfig) string {
	if h == nil || len(h.Test) < 2 {
		return ""
	}
	switch h.Test[0] {
	case "CMD":
		return strings.Join(h.Test[1:], " ")
	case "CMD-SHELL":
		return "/bin/sh -c " + strings.Join(h.Test[1:], " ")
	}
	return ""
}

// noteExec follows the engine's health checks through exec events: it
// remembers which exec runs a container's check, and counts the checks that
// fail in a row. It tells whether the count went from none to some or back
// (the supervisor is told: a standby may start, or go).
func (d *Docker) noteExec(m events.Message, action string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	id, exec := m.Actor.ID, m.Actor.Attributes["execID"]
	if cmd, ok := strings.CutPrefix(action, "exec_create: "); ok {
		if e, cached := d.inspected[id]; cached && e.check != "" && cmd == e.check {
			if len(d.checks) > 4096 {
				clear(d.checks) // execs whose end was never seen (a stream lost mid-way)
			}
			d.checks[exec] = true
		}
		return false
	}
	if action != "exec_die" || !d.checks[exec] {
		return false
	}
	delete(d.checks, exec)
	e, ok := d.inspected[id]
	if !ok {
		return false
	}
	was := e.c.HealthFailing
	if m.Actor.Attributes["exitCode"] == "0" {
		e.c.HealthFailing = 0
	} else {
		e.c.HealthFailing++
	}
	d.inspected[id] = e
	return (was == 0) != (e.c.HealthFailing == 0)
}
