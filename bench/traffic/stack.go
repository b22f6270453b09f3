package main

import (
	"context"
	"fmt"
	"os"

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

// newProject is a project of the benchmark's daemon: its replicas are what tend's proxy,
// nginx and wrk (direct) send requests to.
func newProject(d *harness.Docker, t *harness.Tend, c config, name, compose string) *harness.Project {
	return &harness.Project{D: d, T: t, Name: name, Compose: compose, Replicas: c.replicas, Limit: c.startupWait}
}

// teardown takes the projects down and stops the daemon, keeping its log if asked.
func teardown(ctx context.Context, c config, t *harness.Tend, ps ...*harness.Project) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Down(ctx))
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
