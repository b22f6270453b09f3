package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// swarmMode remembers what the harness changed to put the engine in swarm mode, so it
// can undo exactly that.
type swarmMode struct {
	initialized bool // the harness ran `docker swarm init`
	hadGWBridge bool // docker_gwbridge existed before (swarm init creates it and leave keeps it)
}

// ensureSwarm initializes a single-node swarm unless one is active. It listens and
// advertises on loopback only: no swarm traffic leaves the machine.
func ensureSwarm(ctx context.Context, d *harness.Docker) (*swarmMode, error) {
	st, err := d.SwarmState(ctx)
	if err != nil {
		return nil, err
	}
	switch st {
	case "active":
		return &swarmMode{}, nil
	case "inactive":
	default:
		return nil, fmt.Errorf("swarm is %q; want active or inactive", st)
	}
	s := &swarmMode{hadGWBridge: d.NetworkExists(ctx, "docker_gwbridge")}
	if _, err := harness.Run(ctx, "docker", "swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377"); err != nil {
		return nil, err
	}
	s.initialized = true
	return s, nil
}

// leave undoes ensureSwarm: leaves the swarm if the harness joined it, and removes the
// docker_gwbridge network swarm init created.
func (s *swarmMode) leave(ctx context.Context, d *harness.Docker) error {
	if s == nil || !s.initialized {
		return nil
	}
	if _, err := harness.Run(ctx, "docker", "swarm", "leave", "--force"); err != nil {
		return err
	}
	if s.hadGWBridge {
		return nil
	}
	var err error
	for i := 0; i < 20; i++ {
		if _, err = harness.Run(ctx, "docker", "network", "rm", "docker_gwbridge"); err == nil || !d.NetworkExists(ctx, "docker_gwbridge") {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return err
}

// sweepLeftovers removes what an interrupted earlier run may have left behind.
func sweepLeftovers(ctx context.Context, d *harness.Docker) {
	if st, _ := d.SwarmState(ctx); st == "active" {
		if out, err := harness.Run(ctx, "docker", "service", "ls", "-q", "--filter", "label="+benchLabel); err == nil && out != "" {
			fmt.Println("removing leftover services from an earlier run")
			harness.Run(ctx, "docker", append([]string{"service", "rm"}, strings.Fields(out)...)...)
			time.Sleep(2 * time.Second)
		}
	}
	for _, l := range []string{benchLabel, "io.tend.project=" + prefix + "-tend"} {
		cs, _ := d.Containers(ctx, true, l)
		for _, c := range cs {
			fmt.Println("removing leftover container", c.Name())
			harness.Run(ctx, "docker", "rm", "-f", c.ID)
		}
		ns, _ := d.Networks(ctx, map[string][]string{"label": {l}})
		for _, n := range ns {
			fmt.Println("removing leftover network", n.Name)
			harness.Run(ctx, "docker", "network", "rm", n.ID)
		}
	}
}
