package harness

import (
	"context"
	"fmt"
)

// SwarmMode remembers what EnsureSwarm changed to put the engine in swarm mode, so Leave
// can undo exactly that.
type SwarmMode struct {
	// Initialized is true when EnsureSwarm ran `docker swarm init`.
	Initialized bool
	hadGWBridge bool // docker_gwbridge existed before (swarm init creates it and leave keeps it)
}

// EnsureSwarm initializes a single-node swarm unless one is active. It listens and
// advertises on loopback only: no swarm traffic leaves the machine.
func EnsureSwarm(ctx context.Context, d *Docker) (*SwarmMode, error) {
	st, err := d.SwarmState(ctx)
	if err != nil {
		return nil, err
	}
	switch st {
	case "active":
		return &SwarmMode{}, nil
	case "inactive":
	default:
		return nil, fmt.Errorf("swarm is %q; want active or inactive", st)
	}
	s := &SwarmMode{hadGWBridge: d.NetworkExists(ctx, "docker_gwbridge")}
	if _, err := Run(ctx, "docker", "swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377"); err != nil {
		return nil, err
	}
	s.Initialized = true
	return s, nil
}

// Leave undoes EnsureSwarm: it leaves the swarm if EnsureSwarm joined it, and removes the
// docker_gwbridge network swarm init created. A nil SwarmMode does nothing.
func (s *SwarmMode) Leave(ctx context.Context, d *Docker) error {
	if s == nil || !s.Initialized {
		return nil
	}
	if _, err := Run(ctx, "docker", "swarm", "leave", "--force"); err != nil {
		return err
	}
	if s.hadGWBridge {
		return nil
	}
	return RemoveNetwork(ctx, d, "docker_gwbridge")
}
