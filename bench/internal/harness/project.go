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

// PlainCompose is a compose file of one service, web, as users write it: replicas of
// image, its port 8080 published plainly on addr (short syntax, no app_protocol, no
// x-tend: nothing tells tend that the port speaks HTTP) and a compose healthcheck in
// exec form (the demo image has no shell). An addr without a host (":18301") publishes
// on every interface ("18301:8080").
func PlainCompose(why, image, addr string, replicas int) string {
	publish := strings.TrimPrefix(addr, ":")
	return fmt.Sprintf(`# written by %s: a plain published port, a compose healthcheck, no x-tend
services:
  web:
    image: %s
    ports: ["%s:8080"]
    deploy: {replicas: %d}
    healthcheck:
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 1s
      retries: 3
`, why, image, publish, replicas)
}

// Project is a compose project of one service, web, that a benchmark hands to its tend
// daemon: the replicas every peer sends requests to.
type Project struct {
	D        *Docker
	T        *Tend
	Name     string
	Compose  string        // the compose file's text
	Replicas int           // of web
	Limit    time.Duration // for tend up --wait, and for replicas to be ready again
	up       bool
}

// Up writes the compose file and runs `tend up --wait` on it.
func (p *Project) Up(ctx context.Context) error {
	p.up = true
	return p.T.Up(ctx, p.Name, "compose-"+p.Name+".yaml", p.Compose, p.Limit)
}

// Short is a replica's name without the project: "web-1".
func (p *Project) Short(r Replica) string { return r.Short(p.Name) }

// List returns web's containers by slot, with their addresses.
func (p *Project) List(ctx context.Context) ([]Replica, error) {
	return ServiceReplicas(ctx, p.D, p.Name, "web", p.Replicas)
}

// Running returns the running containers of web, by short name ("web-2") to ID.
func (p *Project) Running(ctx context.Context) (map[string]string, error) {
	cs, err := p.D.Containers(ctx, false, "io.tend.project="+p.Name, "io.tend.service=web")
	out := map[string]string{}
	for _, c := range cs {
		out[strings.TrimPrefix(c.Name(), p.Name+"-")] = c.ID
	}
	return out, err
}

// ContainerIDs lists the running replicas' containers, for CPU accounting.
func (p *Project) ContainerIDs() []string {
	cs, _ := p.D.Containers(context.Background(), false, "io.tend.project="+p.Name, "io.tend.service=web")
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// WaitSettled returns once tend reports every replica running and ready, each started at
// least settle ago (so that none is within a restart streak).
func (p *Project) WaitSettled(ctx context.Context, settle time.Duration) ([]PSReplica, error) {
	return p.T.WaitSettled(ctx, p.Name, p.Replicas, settle, p.Limit)
}

// Down takes the project down, if Up was called, and removes (and reports) whatever
// tend down left.
func (p *Project) Down(ctx context.Context) error {
	if !p.up {
		return nil
	}
	p.up = false
	_, err := p.T.Run(ctx, "down", "-p", p.Name)
	return FirstErr(err, SweepTend(ctx, p.D, p.Name))
}

// Line names the replicas with their addresses: "web-1 172.20.0.2, web-2 172.20.0.3".
func (p *Project) Line(reps []Replica) string {
	var parts []string
	for _, r := range reps {
		parts = append(parts, p.Short(r)+" "+r.IP)
	}
	return strings.Join(parts, ", ")
}
