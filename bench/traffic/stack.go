package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

const composeFile = `# written by bench/traffic: tend's proxy publishes the port and balances over the replicas
services:
  web:
    image: %s
    ports: ["%s:8080"]
    deploy: {replicas: %d}
    x-tend:
      readiness:
        http: {port: 8080, path: /health}
        interval: 1s
`

// stack is the service tend runs for every target: its replicas are what tend's proxy,
// nginx and wrk (direct) all send requests to.
type stack struct {
	d *harness.Docker
	t *harness.Tend
	c config
}

// replica is one container of the service.
type replica struct {
	slot     int
	name, id string
	ip       string
}

// short is the replica's name without the project: "web-1".
func (r replica) short() string { return strings.TrimPrefix(r.name, project+"-") }

func (s *stack) up(ctx context.Context) error {
	return s.t.Up(ctx, project, "compose.yaml", fmt.Sprintf(composeFile, s.c.image, s.c.tendAddr, s.c.replicas), s.c.startupWait)
}

// replicaList returns the service's containers by slot, with their addresses as the
// engine reports them (docker inspect).
func (s *stack) replicaList(ctx context.Context) ([]replica, error) {
	cs, err := s.d.Containers(ctx, true, "io.tend.project="+project, "io.tend.service=web")
	if err != nil {
		return nil, err
	}
	var out []replica
	for _, c := range cs {
		slot, _ := strconv.Atoi(c.Labels["io.tend.slot"])
		ins, err := s.d.Inspect(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		r := replica{slot: slot, name: c.Name(), id: c.ID}
		for _, n := range ins.NetworkSettings.Networks {
			r.ip = n.IPAddress
		}
		if r.ip == "" {
			return nil, fmt.Errorf("replica %s has no address", r.name)
		}
		out = append(out, r)
	}
	if len(out) != s.c.replicas {
		return nil, fmt.Errorf("%d replicas, want %d", len(out), s.c.replicas)
	}
	slices.SortFunc(out, func(a, b replica) int { return a.slot - b.slot })
	return out, nil
}

// containerIDs lists the replicas' containers, for CPU accounting.
func (s *stack) containerIDs() []string {
	cs, _ := s.d.Containers(context.Background(), false, "io.tend.project="+project, "io.tend.service=web")
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// psReplica is the part of `tend ps --json` the benchmark reads.
type psReplica struct {
	Service   string    `json:"service"`
	Container string    `json:"container"`
	State     string    `json:"state"`
	Ready     bool      `json:"ready"`
	Restarts  int       `json:"restarts"`
	StartedAt time.Time `json:"started_at"`
}

func (s *stack) ps(ctx context.Context) ([]psReplica, error) {
	out, err := s.t.Run(ctx, "ps", "-p", project, "--json")
	if err != nil {
		return nil, err
	}
	var reps []psReplica
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		return nil, fmt.Errorf("tend ps --json: %w", err)
	}
	return reps, nil
}

// waitSettled returns once tend reports every replica running and ready, each started at
// least settle ago (so none is within a restart streak).
func (s *stack) waitSettled(ctx context.Context, settle time.Duration) ([]psReplica, error) {
	deadline := time.Now().Add(s.c.startupWait + settle)
	var why string
	for time.Now().Before(deadline) {
		reps, err := s.ps(ctx)
		why = ""
		if err != nil {
			why = err.Error()
		} else if len(reps) != s.c.replicas {
			why = fmt.Sprintf("%d replicas, want %d", len(reps), s.c.replicas)
		}
		var wait time.Duration
		for _, r := range reps {
			switch {
			case why != "":
			case r.State != "running" || !r.Ready:
				why = fmt.Sprintf("%s %s, ready %v", r.Container, r.State, r.Ready)
			default:
				wait = max(wait, time.Until(r.StartedAt.Add(settle)))
			}
		}
		if why == "" && wait <= 0 {
			return reps, nil
		}
		if why == "" {
			why = "settling"
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(max(wait, 100*time.Millisecond), time.Second)):
		}
	}
	return nil, fmt.Errorf("replicas not ready and settled after %s: %s", s.c.startupWait+settle, why)
}

// metrics returns the daemon's Prometheus text (GET /metrics on its API socket).
func (s *stack) metrics(ctx context.Context) (string, error) {
	hc := &http.Client{Transport: unixTransport(s.t.Socket), Timeout: 5 * time.Second}
	return get(ctx, hc, "http://tend/metrics")
}

// teardown takes the stack down, stops the daemon, and removes (and reports) whatever
// tend down left behind.
func (s *stack) teardown(ctx context.Context) error {
	_, err1 := s.t.Run(ctx, "down", "-p", project)
	if s.c.tendLog != "" {
		if err := os.WriteFile(s.c.tendLog, []byte(s.t.Log()), 0o644); err != nil {
			fmt.Println("tend's log:", err)
		}
	}
	err2 := s.t.Stop()
	var err3 error
	if left := sweep(ctx, s.d); len(left) > 0 {
		err3 = fmt.Errorf("tend down left %s (removed by the harness)", strings.Join(left, ", "))
	}
	return harness.FirstErr(err1, err2, err3)
}

// sweep removes the project's containers and networks, which an interrupted earlier
// run, or a failed tend down, may have left, and names them.
func sweep(ctx context.Context, d *harness.Docker) []string {
	left := harness.RemoveLabelled(ctx, d, "io.tend.project="+project)
	if len(left) > 0 {
		fmt.Printf("removed leftovers: %s\n", strings.Join(left, ", "))
	}
	return left
}

func replicasLine(reps []replica) string {
	var parts []string
	for _, r := range reps {
		parts = append(parts, r.short()+" "+r.ip)
	}
	return strings.Join(parts, ", ")
}
