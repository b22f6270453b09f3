package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// measure makes the replica behind old sick and times until the peer has replaced it.
//
// Subscribed to the engine's events for the peer's containers before POST /sick, it
// learns of a new container from its start event, looks its address up once and polls
// only that address with GET /health until it answers 200, deleting the address's
// neighbour entry after every failed attempt. The sick container's die (or destroy)
// event marks it gone. Nothing lists containers while a trial runs; the only other
// engine call is one inspect of the sick container when it turns unhealthy, to read the
// engine's health log.
func (m *meter) measure(ctx context.Context, p *peer, old harness.Target) trial {
	evCtx, stop := context.WithCancel(ctx)
	defer stop()
	// since: replay anything logged from here on, so nothing is lost between the engine
	// answering the subscription and registering it.
	evs, err := m.docker.Events(evCtx, time.Now(), map[string][]string{"type": {"container"}, "label": p.Labels})
	if err != nil {
		return trial{Err: fmt.Errorf("subscribe to events: %w", err)}
	}
	w := &watch{m: m, p: p, old: old, t0: time.Now(),
		created: map[string]time.Duration{}, started: map[string]time.Duration{}, healthy: map[string]time.Duration{}}
	w.tr.Sent = w.t0.Round(0)
	if err := m.post(ctx, old, "/sick"); err != nil {
		return trial{Err: err}
	}
	deadline := w.t0.Add(m.limit)
	for !w.done() {
		wait := time.Until(deadline)
		if w.cand.IP != nil {
			wait = min(wait, time.Until(w.nextPoll))
		}
		timer := time.NewTimer(max(wait, 0))
		select {
		case ev, ok := <-evs.C:
			timer.Stop()
			if !ok {
				return w.fail(fmt.Errorf("event stream ended: %v", evs.Err()))
			}
			if err := w.event(ctx, ev); err != nil {
				return w.fail(err)
			}
		case <-timer.C:
			if !time.Now().Before(deadline) {
				return w.never(ctx)
			}
			if w.cand.IP != nil {
				if err := w.poll(ctx); err != nil {
					return w.fail(err)
				}
			}
		case <-ctx.Done():
			timer.Stop()
			return w.fail(ctx.Err())
		}
	}
	w.tr.Done = true
	w.tr.Heal = later(w.answered, w.gone).Sub(w.t0)
	w.linger(ctx, evs)
	return w.tr
}

// watch is the state of one trial.
type watch struct {
	m   *meter
	p   *peer
	old harness.Target // the sick replica
	t0  time.Time      // POST /sick sent
	tr  trial
	// cand is the newest started container other than old, polled until it answers.
	cand     harness.Target
	nextPoll time.Time
	created  map[string]time.Duration // per container, after t0
	started  map[string]time.Duration
	healthy  map[string]time.Duration
	answered time.Time // cand answered GET /health with 200
	newID    string    // the container that answered
	gone     time.Time // the harness read old's die or destroy event
}

func (w *watch) done() bool { return !w.answered.IsZero() && !w.gone.IsZero() }

func (w *watch) fail(err error) trial {
	w.tr.Err = err
	return w.tr
}

// event takes one engine event about the peer's containers.
func (w *watch) event(ctx context.Context, ev harness.Event) error {
	at := ev.Time().Sub(w.t0) // wall clocks of the same host
	id := ev.Actor.ID
	if id == w.old.Container {
		switch ev.Action {
		case "die", "destroy":
			if w.gone.IsZero() {
				w.gone = ev.Received
			}
			key := msStopped
			if ev.Action == "destroy" {
				key = msRemoved
			}
			w.tr.mark(key, at)
		case "kill":
			w.tr.mark(msKilled, at)
		case "health_status: unhealthy":
			w.tr.mark(msUnhealthy, at)
			w.firstFailure(ctx)
		}
		return nil
	}
	switch ev.Action {
	case "create":
		w.created[id] = at
	case "health_status: healthy":
		w.healthy[id] = at
		if id == w.newID {
			w.tr.mark(msHealthy, at)
		}
	case "start":
		w.started[id] = at
		w.tr.Starts++
		if !w.answered.IsZero() {
			return nil // already replaced; a later start is not what the trial waits for
		}
		t, ok, err := w.p.Target(ctx, id)
		if err != nil {
			return fmt.Errorf("address of started container %.12s: %w", id, err)
		}
		if !ok {
			return fmt.Errorf("started container %.12s has no address on a host bridge when its start event arrives", id)
		}
		w.cand, w.nextPoll = t, time.Now()
	case "die":
		if id == w.cand.Container {
			w.cand = harness.Target{} // the new container failed; wait for the next start
		}
	}
	return nil
}

// poll sends GET /health to the new container once.
func (w *watch) poll(ctx context.Context) error {
	w.tr.Attempts++
	code, _, err := w.m.call(ctx, http.MethodGet, w.cand, "/health")
	now := time.Now()
	if err == nil && code == http.StatusOK {
		w.answered, w.newID = now, w.cand.Container
		w.tr.mark(msAnswers, now.Sub(w.t0))
		for key, at := range map[string]map[string]time.Duration{msCreated: w.created, msStarted: w.started, msHealthy: w.healthy} {
			if d, ok := at[w.newID]; ok {
				w.tr.mark(key, d)
			}
		}
		w.cand = harness.Target{}
		return nil
	}
	w.tr.Failed++
	if err != nil && w.m.neigh != nil {
		if err := w.m.neigh.Delete(w.cand); err != nil {
			return err
		}
	}
	w.nextPoll = now.Add(w.m.gap)
	return nil
}

// firstFailure reads the engine's health log of the sick container, which now holds the
// failing checks that made it unhealthy, and marks the first of them that ended after
// POST /sick.
func (w *watch) firstFailure(ctx context.Context) {
	st, err := w.m.docker.Inspect(ctx, w.old.Container)
	if err != nil || st.State.Health == nil {
		return
	}
	for _, r := range st.State.Health.Log {
		if r.ExitCode != 0 && r.End.After(w.t0) {
			w.tr.mark(msFail, r.Start.Sub(w.t0))
			if !strings.Contains(r.Output, " 503 ") { // the demo's probe prints the status it got
				w.tr.Notes = append(w.tr.Notes, "first failing check: "+strings.TrimSpace(r.Output))
			}
			return
		}
	}
}

// never ends a trial at the cap, saying what the sick container is doing.
func (w *watch) never(ctx context.Context) trial {
	st, err := w.m.docker.Inspect(ctx, w.old.Container)
	switch {
	case err != nil:
		w.tr.Left = "sick container: " + err.Error()
	case st.State.Running:
		health := "no health check"
		if st.State.Health != nil {
			health = st.State.Health.Status
		}
		w.tr.Left = fmt.Sprintf("still the sick container after %s: running, %s, %d restarts", w.m.limit, health, st.RestartCount)
	default:
		w.tr.Left = fmt.Sprintf("the sick container is %s; %d other containers started, none answered within %s", st.State.Status, w.tr.Starts, w.m.limit)
	}
	return w.tr
}

// linger follows events a little longer after a trial, for the sick container's
// removal (tend removes it; Swarm keeps exited tasks) and the new container's first
// healthy check (where the engine runs checks). It does not change the trial's time.
func (w *watch) linger(ctx context.Context, evs *harness.EventStream) {
	_, engineChecks := w.tr.At[msUnhealthy]
	complete := func() bool {
		_, removed := w.tr.At[msRemoved]
		_, healthy := w.tr.At[msHealthy]
		return removed && (healthy || !engineChecks)
	}
	timer := time.NewTimer(w.m.linger)
	defer timer.Stop()
	for !complete() {
		select {
		case ev, ok := <-evs.C:
			if !ok {
				return
			}
			w.event(ctx, ev) // marks only: the trial is done, nothing is polled any more
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
