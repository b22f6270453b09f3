package harness

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// RemoveLabelled force-removes the containers, then the networks, that carry label
// ("key=value"), and names what it removed: "container NAME", "network NAME".
func RemoveLabelled(ctx context.Context, d *Docker, label string) []string {
	var removed []string
	cs, _ := d.Containers(ctx, true, label)
	for _, c := range cs {
		Run(ctx, "docker", "rm", "-f", c.ID)
		removed = append(removed, "container "+c.Name())
	}
	ns, _ := d.Networks(ctx, map[string][]string{"label": {label}})
	for _, n := range ns {
		Run(ctx, "docker", "network", "rm", n.ID)
		removed = append(removed, "network "+n.Name)
	}
	return removed
}

// SweepLeftovers removes what an interrupted earlier run may have left behind: the
// containers and networks with any of the labels, each named as it goes.
func SweepLeftovers(ctx context.Context, d *Docker, labels ...string) {
	for _, l := range labels {
		for _, what := range RemoveLabelled(ctx, d, l) {
			fmt.Println("removing leftover", what)
		}
	}
}

// SweepTend removes whatever `tend down` left of the project, and says so in its error:
// a leftover is a tend bug worth reporting, not something to hide.
func SweepTend(ctx context.Context, d *Docker, project string) error {
	if left := RemoveLabelled(ctx, d, "io.tend.project="+project); len(left) > 0 {
		return fmt.Errorf("tend down left %s (removed by the harness)", strings.Join(left, ", "))
	}
	return nil
}

// AwaitNoContainers waits up to 30 s for the containers with label to go (a removed
// swarm service's tasks stop in their own time), and then force-removes any still there.
func AwaitNoContainers(ctx context.Context, d *Docker, label string) {
	for i := 0; i < 150; i++ {
		cs, err := d.Containers(ctx, true, label)
		if err != nil || len(cs) == 0 {
			return
		}
		if i == 149 {
			for _, c := range cs {
				Run(ctx, "docker", "rm", "-f", c.ID)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// RemoveNetwork removes a network, retrying for up to 10 s: a network stays busy for a
// moment after its last container goes. A network that is, or meanwhile goes, missing is
// no error.
func RemoveNetwork(ctx context.Context, d *Docker, name string) error {
	var err error
	for i := 0; i < 20; i++ {
		if _, err = Run(ctx, "docker", "network", "rm", name); err == nil || !d.NetworkExists(ctx, name) {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return err
}

// FirstErr returns the first non-nil error, so a cleanup can run every step and still
// report what failed.
func FirstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
