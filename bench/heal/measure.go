package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// meter talks HTTP to replicas and times trials. Every request opens a fresh connection
// with a short dial timeout, so no attempt waits on a connection to a process that is
// gone.
type meter struct {
	client *http.Client
	neigh  *harness.Neighbours // nil: leave the neighbour cache alone
	docker *harness.Docker
	gap    time.Duration // pause between attempts on the new container's address
	limit  time.Duration // a trial without a replacement ends after this long
	linger time.Duration // after a trial, wait this long for the sick container's removal
}

func newMeter(c config, neigh *harness.Neighbours, d *harness.Docker) *meter {
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: c.dialTimeout}).DialContext,
	}
	return &meter{
		client: &http.Client{Transport: tr, Timeout: c.requestTimeout},
		neigh:  neigh,
		docker: d,
		gap:    c.gap,
		limit:  c.limit,
		linger: c.linger,
	}
}

// call sends one request to the replica at t and returns the status and body.
func (m *meter) call(ctx context.Context, method string, t harness.Target, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+net.JoinHostPort(t.IP.String(), "8080")+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, b, err
}

// health checks that GET /health answers 200.
func (m *meter) health(ctx context.Context, t harness.Target) error {
	code, body, err := m.call(ctx, http.MethodGet, t, "/health")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET /health on %s: %d %s", t, code, body)
	}
	return nil
}

// identity is the part of GET / the harness reads.
type identity struct {
	Instance string `json:"instance"`
	Started  string `json:"started"`
	started  time.Time
}

func (m *meter) identify(ctx context.Context, t harness.Target) (identity, error) {
	var id identity
	code, body, err := m.call(ctx, http.MethodGet, t, "/")
	if err != nil {
		return id, err
	}
	if code != http.StatusOK {
		return id, fmt.Errorf("GET / on %s: %d", t, code)
	}
	if err := json.Unmarshal(body, &id); err != nil {
		return id, fmt.Errorf("GET / on %s: %w", t, err)
	}
	if id.started, err = time.Parse(time.RFC3339Nano, id.Started); err != nil {
		return id, fmt.Errorf("GET / on %s: started %q: %w", t, id.Started, err)
	}
	return id, nil
}

// post sends a control request (POST /sick, /heal) and wants 200.
func (m *meter) post(ctx context.Context, t harness.Target, path string) error {
	code, body, err := m.call(ctx, http.MethodPost, t, path)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("POST %s on %s: %d %s", path, t, code, body)
	}
	return nil
}

// heal undoes POST /sick on a container that is still running, so its peer starts the
// next round healthy (plain Docker never replaces it).
func (m *meter) heal(ctx context.Context, t harness.Target) error {
	st, err := m.docker.Inspect(ctx, t.Container)
	if err != nil || !st.State.Running {
		return nil // gone or stopped: the peer replaced it after all
	}
	return m.post(ctx, t, "/heal")
}

// Milestones of a trial, in the order they are printed. Each is a time after POST /sick.
const (
	msFail      = "fail"      // the first failing check: the engine's health log (engine checks only)
	msUnhealthy = "unhealthy" // the engine's health_status: unhealthy event for the sick container
	msUnready   = "unready"   // tend's journal: the replica left rotation
	msReplace   = "replace"   // tend's journal: replacement decided (stamped once created and started)
	msCreated   = "created"   // the engine's create event of the new container
	msStarted   = "started"   // the engine's start event of the new container
	msAnswers   = "answers"   // the new container answered GET /health with 200 (the harness's clock)
	msHealthy   = "healthy"   // the engine's health_status: healthy event of the new container (engine checks only)
	msTakeover  = "takeover"  // tend's journal: the replacement took over (stamped once the sick one is removed)
	msKilled    = "killed"    // the engine's kill event of the sick container: the stop's signal was sent
	msStopped   = "stopped"   // the engine's die event of the sick container
	msRemoved   = "removed"   // the engine's destroy event of the sick container
)

// milestones lists them with the labels the report uses.
var milestones = []struct{ key, label string }{
	{msFail, "1st failing check"},
	{msUnhealthy, "unhealthy"},
	{msUnready, "unready"},
	{msReplace, "replace"},
	{msCreated, "new created"},
	{msStarted, "new started"},
	{msAnswers, "new answers"},
	{msHealthy, "new healthy"},
	{msTakeover, "takeover"},
	{msKilled, "old signalled"},
	{msStopped, "old stopped"},
	{msRemoved, "old removed"},
}

// trial is one sick replica and what the peer did about it.
type trial struct {
	Sent time.Time     // POST /sick sent (wall clock)
	Done bool          // a new container answered and the sick one stopped, within the cap
	Heal time.Duration // POST /sick sent -> both seen by the harness (Done only)
	At   map[string]time.Duration
	// Starts counts start events of other containers of the peer; Attempts and Failed
	// count GET /health attempts on them.
	Starts, Attempts, Failed int
	// Left says what the sick container was doing when a trial ended without a
	// replacement.
	Left  string
	Notes []string // anything unexpected, e.g. a failed action in tend's journal
	Err   error
}

func (t *trial) mark(key string, at time.Duration) {
	if t.At == nil {
		t.At = map[string]time.Duration{}
	}
	if _, ok := t.At[key]; !ok {
		t.At[key] = at
	}
}
