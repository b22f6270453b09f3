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
	"slices"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// prober talks HTTP to replicas. Every attempt opens a fresh connection with a short
// dial timeout, so no attempt waits on a connection to a process that is gone.
type prober struct {
	client  *http.Client
	neigh   *harness.Neighbours // nil: leave the neighbour cache alone (to show the stall)
	gap     time.Duration
	timeout time.Duration
	docker  *harness.Docker
	// pollOld also polls the crashed replica's address while the engine lists no
	// running replica there, as a naive poller would (to show the neighbour-cache stall).
	pollOld bool
}

func newProber(dialTimeout, requestTimeout, gap, trialTimeout time.Duration, neigh *harness.Neighbours, d *harness.Docker) *prober {
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: dialTimeout}).DialContext,
	}
	return &prober{
		client:  &http.Client{Transport: tr, Timeout: requestTimeout},
		neigh:   neigh,
		gap:     gap,
		timeout: trialTimeout,
		docker:  d,
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
	NoTarget int           // polls that found no running replica to try
	// Where the time went, from the engine's records (wall clock, same host):
	Exit    time.Duration // crash sent -> old container's State.FinishedAt
	Restart time.Duration // FinishedAt -> new container's State.StartedAt: the supervisor's reaction and the start
	Seen    time.Duration // StartedAt -> answer: the process starting to serve, plus polling
	PhaseOK bool
	// LagProc is answer time - the new process's own start time (GET / "started"); near
	// zero when polling does not stall.
	LagProc time.Duration
	LagOK   bool
	Err     error
}

// measure crashes the replica behind cur and polls until a new instance answers.
// Each poll re-discovers the peer's running replicas through the Engine API (a
// replacement may be a new container with a new address), tries each once, and
// after every failed attempt deletes the neighbour entry of the address it tried.
func (p *prober) measure(ctx context.Context, pr *peer, cur harness.Target) trial {
	var tr trial
	old, err := p.identify(ctx, cur)
	if err != nil {
		tr.Err = fmt.Errorf("before crash: %w", err)
		return tr
	}
	t0 := time.Now()
	if err := p.crash(ctx, cur); err != nil {
		// The process may exit before the answer is read; the measurement still holds.
		fmt.Fprintf(os.Stderr, "  note: %s: POST /crash: %v\n", pr.name, err)
	}
	deadline := t0.Add(p.timeout)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			tr.Err = ctx.Err()
			return tr
		}
		targets, err := pr.targets(ctx)
		if err != nil {
			tr.Err = err
			return tr
		}
		if len(targets) == 0 {
			tr.NoTarget++
		}
		if p.pollOld && !slices.ContainsFunc(targets, func(t harness.Target) bool { return t.IP.Equal(cur.IP) }) {
			targets = append(targets, cur)
		}
		for _, t := range targets {
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
		}
		time.Sleep(p.gap)
	}
	tr.Err = fmt.Errorf("no new instance within %s (%d attempts, %d failed)", p.timeout, tr.Attempts, tr.Failed)
	return tr
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
	tr.PhaseOK = true
}
