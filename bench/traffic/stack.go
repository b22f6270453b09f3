package main

import (
	"context"
	"fmt"
	"os"
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

// composePlain is the same service as users write it: a plain published port and a
// compose healthcheck (exec form: the image has no shell), nothing that tells tend the
// port speaks HTTP.
const composePlain = `# written by bench/traffic: a plain published port, a compose healthcheck, no x-tend
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
`

// stack is a project of one service tend runs: its replicas are what tend's proxy,
// nginx and wrk (direct) send requests to.
type stack struct {
	d       *harness.Docker
	t       *harness.Tend
	c       config
	project string
	compose string
	up      bool // tend up succeeded: down at teardown
}

func newStack(d *harness.Docker, t *harness.Tend, c config, project, compose, addr string) *stack {
	return &stack{d: d, t: t, c: c, project: project, compose: fmt.Sprintf(compose, c.image, addr, c.replicas)}
}

func (s *stack) bringUp(ctx context.Context) error {
	s.up = true
	return s.t.Up(ctx, s.project, "compose-"+s.project+".yaml", s.compose, s.c.startupWait)
}

// short is a replica's name without the project: "web-1".
func (s *stack) short(r harness.Replica) string { return r.Short(s.project) }

// replicaList returns the service's containers by slot, with their addresses.
func (s *stack) replicaList(ctx context.Context) ([]harness.Replica, error) {
	return harness.ServiceReplicas(ctx, s.d, s.project, "web", s.c.replicas)
}

// containerIDs lists the replicas' containers, for CPU accounting.
func (s *stack) containerIDs() []string {
	cs, _ := s.d.Containers(context.Background(), false, "io.tend.project="+s.project, "io.tend.service=web")
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// waitSettled returns once tend reports every replica running and ready, each started at
// least settle ago (so none is within a restart streak).
func (s *stack) waitSettled(ctx context.Context, settle time.Duration) ([]harness.PSReplica, error) {
	return s.t.WaitSettled(ctx, s.project, s.c.replicas, settle, s.c.startupWait)
}

// down takes the project down and removes (and reports) whatever tend down left.
func (s *stack) down(ctx context.Context) error {
	if !s.up {
		return nil
	}
	s.up = false
	_, err1 := s.t.Run(ctx, "down", "-p", s.project)
	return harness.FirstErr(err1, harness.SweepTend(ctx, s.d, s.project))
}

// teardown takes the stacks down and stops the daemon, keeping its log if asked.
func teardown(ctx context.Context, c config, t *harness.Tend, stacks ...*stack) error {
	var errs []error
	for _, s := range stacks {
		errs = append(errs, s.down(ctx))
	}
	if c.tendLog != "" {
		if err := os.WriteFile(c.tendLog, []byte(t.Log()), 0o644); err != nil {
			fmt.Println("tend's log:", err)
		}
	}
	errs = append(errs, t.Stop())
	return harness.FirstErr(errs...)
}

// sweep removes the projects' containers and networks, which an interrupted earlier run
// may have left.
func sweep(ctx context.Context, d *harness.Docker) {
	harness.SweepLeftovers(ctx, d, "io.tend.project="+project, "io.tend.project="+plainProject)
}

func replicasLine(s *stack, reps []harness.Replica) string {
	var parts []string
	for _, r := range reps {
		parts = append(parts, s.short(r)+" "+r.IP)
	}
	return strings.Join(parts, ", ")
}
