package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// prober talks HTTP to replicas. Every attempt opens a fresh connection with a short
// dial timeout, so no attempt waits on a connection to a process that is gone.
type prober struct {
	client  *http.Client
	neigh   *harness.Neighbours // nil: leave the neighbour cache alone (to show the stall)
	gap     time.Duration       // pause between attempts on the new replica's address
	timeout time.Duration       // a whole trial
	// eventWait is how long after the crash a start event may take; a trial without one
	// fails (the harness does not fall back to listing or guessing addresses).
	eventWait time.Duration
	docker    *harness.Docker
	// pollOld also polls the crashed replica's address until the engine reports a
	// start, as a naive client hammering that address would (to show the
	// neighbour-cache stall).
	pollOld bool
}

func newProber(dialTimeout, requestTimeout, gap, trialTimeout, eventWait time.Duration, neigh *harness.Neighbours, d *harness.Docker) *prober {
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: dialTimeout}).DialContext,
	}
	return &prober{
		client:    &http.Client{Transport: tr, Timeout: requestTimeout},
		neigh:     neigh,
		gap:       gap,
		timeout:   trialTimeout,
		eventWait: eventWait,
		docker:    d,
	}
}

// identity is what GET / reports.
type identity struct {
	Instance string `json:"instance"`
	Started  string `json:"started"`
	Hostname string `json:"hostname"`
}

func (p *prober) identify(ctx context.Context, t harness.Target) (identity, error) {
	var id identity
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(t.IP.String(), "8080")+"/", nil)
	if err != nil {
		return id, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return id, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return id, fmt.Errorf("GET / on %s: %s", t, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&id); err != nil {
		return id, fmt.Errorf("GET / on %s: %w", t, err)
	}
	if id.Instance == "" {
		return id, fmt.Errorf("GET / on %s: no instance in the answer", t)
	}
	return id, nil
}

func (p *prober) crash(ctx context.Context, t harness.Target) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+net.JoinHostPort(t.IP.String(), "8080")+"/crash", nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST /crash on %s: %s", t, resp.Status)
	}
	return nil
}

// trial is one crash and what it took to see a new process serve.
type trial struct {
	Recovery time.Duration // POST /crash sent -> first answer from a new instance
	Attempts int           // GET / attempts after the crash
	Failed   int           // attempts that got no answer
	Timeouts int           // of which timed out (unresolved address or no SYN-ACK)
	SlowMax  time.Duration // longest single attempt
	Starts   int           // start events of the peer's containers received
	Event    time.Duration // POST /crash sent -> the (last used) start event read off the stream
	Lookup   time.Duration // that container's address lookup (one engine call)
	// Where the time went, from the engine's records (wall clock, same host):
	Exit    time.Duration // crash sent -> old container's State.FinishedAt
	Restart time.Duration // FinishedAt -> new container's State.StartedAt: the supervisor's reaction and the start
	Seen    time.Duration // StartedAt -> answer: the process starting to serve, plus event delivery and polling
	Notice  time.Duration // StartedAt -> start event read by the harness (part of Seen)
	PhaseOK bool
	// LagProc is answer time - the new process's own start time (GET / "started"); near
	// zero when polling does not stall.
	LagProc time.Duration
	LagOK   bool
	Err     error
}

// measure crashes the replica behind cur and times until a new instance answers.
//
// It learns of the new process the way tend and the engine do, from the engine's event
// stream: subscribed before the crash (filtered to container start events carrying the
// peer's labels), it waits for a start event, looks that container's address up once,
// then polls only that address with GET / until a new instance answers, deleting the
// address's neighbour entry after every failed attempt. Nothing lists containers while
// the trial runs. A later start event (the container restarted again) moves the polling
// to that container.
func (p *prober) measure(ctx context.Context, pr *peer, cur harness.Target) trial {
	var tr trial
	old, err := p.identify(ctx, cur)
	if err != nil {
		tr.Err = fmt.Errorf("before crash: %w", err)
		return tr
	}
	evCtx, stop := context.WithCancel(ctx)
	defer stop()
	// since: replay anything logged from here on, so no start is lost between the
	// engine answering the subscription and registering it.
	evs, err := p.docker.Events(evCtx, time.Now(), map[string][]string{
		"type": {"container"}, "event": {"start"}, "label": pr.Labels,
	})
	if err != nil {
		tr.Err = fmt.Errorf("subscribe to events: %w", err)
		return tr
	}
	t0 := time.Now()
	if err := p.crash(ctx, cur); err != nil {
		// The process may exit before the answer is read; the measurement still holds.
		fmt.Fprintf(os.Stderr, "  note: %s: POST /crash: %v\n", pr.name, err)
	}
	deadline, eventDeadline := t0.Add(p.timeout), t0.Add(p.eventWait)
	var tgt harness.Target // the started container's address; IP nil until a start event
	// started handles what the stream delivers: a start event (one address lookup, then
	// polling moves there), or its end.
	started := func(ev harness.Event, ok bool) error {
		if !ok {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("event stream ended: %v", evs.Err())
		}
		tr.Starts++
		tr.Event = ev.Received.Sub(t0)
		s := time.Now()
		t, ok, err := pr.Target(ctx, ev.Actor.ID)
		tr.Lookup = time.Since(s)
		if err != nil {
			return fmt.Errorf("address of started container %.12s: %w", ev.Actor.ID, err)
		}
		if !ok {
			return fmt.Errorf("started container %.12s has no address on a host bridge when its start event arrives", ev.Actor.ID)
		}
		tgt = t
		return nil
	}
	for {
		if tgt.IP == nil && !p.pollOld {
			// Nothing to poll until the engine reports a start: wait on the stream.
			wait := time.NewTimer(time.Until(eventDeadline))
			select {
			case ev, ok := <-evs.C:
				wait.Stop()
				if err := started(ev, ok); err != nil {
					tr.Err = err
					return tr
				}
			case <-wait.C:
				tr.Err = fmt.Errorf("no start event for %s within %s of the crash; not polling without one", strings.Join(pr.Labels, ","), p.eventWait)
				return tr
			case <-ctx.Done():
				wait.Stop()
				tr.Err = ctx.Err()
				return tr
			}
		}
		// Take start events that arrived meanwhile (a restart during polling).
	drain:
		for {
			select {
			case ev, ok := <-evs.C:
				if err := started(ev, ok); err != nil {
					tr.Err = err
					return tr
				}
			default:
				break drain
			}
		}
		now := time.Now()
		if ctx.Err() != nil {
			tr.Err = ctx.Err()
			return tr
		}
		if tgt.IP == nil && now.After(eventDeadline) { // -poll-old
			tr.Err = fmt.Errorf("no start event for %s within %s of the crash", strings.Join(pr.Labels, ","), p.eventWait)
			return tr
		}
		if now.After(deadline) {
			tr.Err = fmt.Errorf("no new instance within %s (%d start events, %d attempts, %d failed)", p.timeout, tr.Starts, tr.Attempts, tr.Failed)
			return tr
		}
		t := tgt
		if t.IP == nil {
			t = cur // -poll-old: hammer the crashed replica's address
		}
		s := time.Now()
		id, err := p.identify(ctx, t)
		at := time.Now()
		tr.Attempts++
		tr.SlowMax = max(tr.SlowMax, at.Sub(s))
		if err == nil && id.Instance != old.Instance {
			tr.Recovery = at.Sub(t0)
			p.phases(ctx, &tr, t0, cur, t, id, at)
			return tr
		}
		if err != nil {
			tr.Failed++
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tr.Timeouts++
			}
			if p.neigh != nil {
				if err := p.neigh.Delete(t); err != nil {
					tr.Err = err
					return tr
				}
			}
		}
		time.Sleep(p.gap)
	}
}

// phases splits a recovery using the engine's timestamps and relates the moment the
// harness saw the new process to when it started. A LagProc near 1 s is the
// neighbour cache, not the peer.
func (p *prober) phases(ctx context.Context, tr *trial, t0 time.Time, old, cur harness.Target, id identity, at time.Time) {
	start, wall := t0.Round(0), at.Round(0) // wall clock: comparable with the engine's times
	if st, err := time.Parse(time.RFC3339Nano, id.Started); err == nil {
		tr.LagProc = wall.Sub(st)
		tr.LagOK = true
	}
	was, err1 := p.docker.Inspect(ctx, old.Container) // after a restart in place, FinishedAt is still the last exit
	now, err2 := p.docker.Inspect(ctx, cur.Container)
	if err1 != nil || err2 != nil || was.State.FinishedAt.Before(start) || now.State.StartedAt.Before(was.State.FinishedAt) {
		return
	}
	tr.Exit = was.State.FinishedAt.Sub(start)
	tr.Restart = now.State.StartedAt.Sub(was.State.FinishedAt)
	tr.Seen = wall.Sub(now.State.StartedAt)
	tr.Notice = start.Add(tr.Event).Sub(now.State.StartedAt)
	tr.PhaseOK = true
}
