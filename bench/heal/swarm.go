package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// stackFile is the swarm peers' stack: the same exec health check as the others
// (`docker service create --health-cmd` would store CMD-SHELL, which a scratch image
// cannot run), dnsrr because a single-node swarm without IPVS has no VIP routing, and the
// restart delay either 0 s or left out (Swarm's default, 5 s). The overlay network is
// what a stack gets by default.
const stackFile = `# written by bench/heal
version: "3.8"
services:
  demo:
    image: %s
    labels: [` + benchLabel + `]
    healthcheck:
      test: ["CMD", "/demo", "-probe", "` + probeURL + `"]
      interval: %s
      timeout: %s
      retries: %d
    deploy:
      replicas: 1
      endpoint_mode: dnsrr
      labels: [` + benchLabel + `]
      restart_policy:
        condition: any%s
networks:
  default:
    labels: [` + benchLabel + `]
`

// setupSwarm puts the engine in swarm mode if needed (once for both swarm peers) and
// deploys the peer's stack with `docker stack deploy`.
func (e *env) setupSwarm(ctx context.Context, p *peer, zeroDelay bool) error {
	if e.swarm == nil && e.swarmErr == nil {
		e.swarm, e.swarmErr = harness.EnsureSwarm(ctx, e.d)
		if e.swarm != nil && e.swarm.Initialized {
			fmt.Println("swarm: initialized a single-node swarm on 127.0.0.1 (left again at the end)")
		}
	}
	if e.swarmErr != nil {
		p.skip = "swarm unavailable: " + e.swarmErr.Error()
		return nil
	}
	stack, delay := prefix+"-swarm", ""
	if zeroDelay {
		stack, delay = prefix+"-swarm0", "\n        delay: 0s"
	}
	p.teardown = func(ctx context.Context) error { return e.removeStack(ctx, stack) }
	dir, err := os.MkdirTemp("", "tend-bench-heal-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "stack.yaml")
	body := fmt.Sprintf(stackFile, e.image, checkInterval, checkTimeout, failureThreshold, delay)
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		return err
	}
	// --resolve-image never: there is no registry to ask for the image's digest.
	if _, err := harness.Run(ctx, "docker", "stack", "deploy", "-c", file, "--resolve-image", "never", stack); err != nil {
		return err
	}
	p.Replicas = harness.Replicas{Labels: []string{"com.docker.swarm.service.name=" + stack + "_demo"}, Addr: e.d.GWBridgeAddress}
	return nil
}

// removeStack removes a stack, waits for its task containers to go (removing stragglers
// itself after 30 s), then makes sure its network is gone.
func (e *env) removeStack(ctx context.Context, stack string) error {
	_, err1 := harness.Run(ctx, "docker", "stack", "rm", stack)
	harness.AwaitNoContainers(ctx, e.d, "com.docker.stack.namespace="+stack)
	return harness.FirstErr(err1, harness.RemoveNetwork(ctx, e.d, stack+"_default"))
}

// sweepLeftovers removes what an interrupted earlier run may have left behind.
func sweepLeftovers(ctx context.Context, d *harness.Docker) {
	if st, _ := d.SwarmState(ctx); st == "active" {
		if out, err := harness.Run(ctx, "docker", "stack", "ls", "--format", "{{.Name}}"); err == nil {
			for _, s := range strings.Fields(out) {
				if strings.HasPrefix(s, prefix+"-") {
					fmt.Println("removing leftover stack", s)
					harness.Run(ctx, "docker", "stack", "rm", s)
				}
			}
		}
	}
	labels := []string{benchLabel}
	for _, p := range allPeers {
		labels = append(labels, "io.tend.project="+prefix+"-"+p.Key)
	}
	harness.SweepLeftovers(ctx, d, labels...)
}
