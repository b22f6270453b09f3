package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Replica is one container of a service tend runs, with its address as the engine
// reports it.
type Replica struct {
	Slot     int
	Name, ID string
	IP       string
}

// Short is the replica's name without its project: "web-1".
func (r Replica) Short(project string) string { return strings.TrimPrefix(r.Name, project+"-") }

// ServiceReplicas returns the containers of a tend project's service (running or not)
// by slot, each with its address (one inspect each). It fails unless there are want of
// them, each with an address.
func ServiceReplicas(ctx context.Context, d *Docker, project, service string, want int) ([]Replica, error) {
	cs, err := d.Containers(ctx, true, "io.tend.project="+project, "io.tend.service="+service)
	if err != nil {
		return nil, err
	}
	var out []Replica
	for _, c := range cs {
		slot, _ := strconv.Atoi(c.Labels["io.tend.slot"])
		ins, err := d.Inspect(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		r := Replica{Slot: slot, Name: c.Name(), ID: c.ID}
		for _, n := range ins.NetworkSettings.Networks {
			r.IP = n.IPAddress
		}
		if r.IP == "" {
			return nil, fmt.Errorf("replica %s has no address", r.Name)
		}
		out = append(out, r)
	}
	if len(out) != want {
		return nil, fmt.Errorf("%d replicas of %s, want %d", len(out), service, want)
	}
	slices.SortFunc(out, func(a, b Replica) int { return a.Slot - b.Slot })
	return out, nil
}

// Addrs are the replicas' addresses with port, in slot order: "172.20.0.2:8080".
func Addrs(reps []Replica, port int) []string {
	var out []string
	for _, r := range reps {
		out = append(out, fmt.Sprintf("%s:%d", r.IP, port))
	}
	return out
}

// PSReplica is the part of `tend ps --json` the benchmarks read.
type PSReplica struct {
	Service   string    `json:"service"`
	Container string    `json:"container"`
	State     string    `json:"state"`
	Ready     bool      `json:"ready"`
	Restarts  int       `json:"restarts"`
	StartedAt time.Time `json:"started_at"`
}

// PS returns `tend ps -p project --json`.
func (t *Tend) PS(ctx context.Context, project string) ([]PSReplica, error) {
	out, err := t.Run(ctx, "ps", "-p", project, "--json")
	if err != nil {
		return nil, err
	}
	var reps []PSReplica
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		return nil, fmt.Errorf("tend ps --json: %w", err)
	}
	return reps, nil
}

// Restarts sums the replicas' restart counts.
func Restarts(reps []PSReplica) int {
	n := 0
	for _, r := range reps {
		n += r.Restarts
	}
	return n
}

// WaitSettled returns once tend reports want replicas of the project, every one running
// and ready and started at least settle ago (so that none is within a restart streak),
// or fails after limit (plus settle).
func (t *Tend) WaitSettled(ctx context.Context, project string, want int, settle, limit time.Duration) ([]PSReplica, error) {
	deadline := time.Now().Add(limit + settle)
	var why string
	for time.Now().Before(deadline) {
		reps, err := t.PS(ctx, project)
		why = ""
		if err != nil {
			why = err.Error()
		} else if len(reps) != want {
			why = fmt.Sprintf("%d replicas, want %d", len(reps), want)
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
	return nil, fmt.Errorf("replicas not ready and settled after %s: %s", limit+settle, why)
}
