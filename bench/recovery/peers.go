package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

const (
	prefix     = "tendbench-rec"
	benchLabel = "io.tend.bench=recovery"
)

// peer is one way of keeping the demo replica running, measured by the same prober.
type peer struct {
	key, name string
	skip      string // why it was not measured; empty when it was
	// Replicas finds the peer's containers; its setup fills it in.
	harness.Replicas
	teardown func(ctx context.Context) error
	trials   []trial
}

// running lists the peer's running replicas with an address. It is used only between
// trials (waiting for a replica to serve), never while a recovery is being timed.
func (p *peer) running(ctx context.Context, d *harness.Docker) ([]harness.Target, error) {
	cs, err := d.Containers(ctx, false, p.Labels...)
	if err != nil {
		return nil, err
	}
	var ts []harness.Target
	for _, c := range cs {
		t, ok, err := p.Target(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		if ok {
			ts = append(ts, t)
		}
	}
	return ts, nil
}

// env is what the peers share.
type env struct {
	d          *harness.Docker
	image      string
	swarmNet   string // "bridge" or "overlay"
	tendBin    string
	startupMax time.Duration
}

// onNetwork looks up the container's address on the named network (one inspect).
func (e *env) onNetwork(name string) func(context.Context, string) (string, error) {
	return func(ctx context.Context, id string) (string, error) {
		cs, err := e.d.Inspect(ctx, id)
		if err != nil {
			return "", err
		}
		return cs.NetworkSettings.Networks[name].IPAddress, nil
	}
}

// waitServing waits until the peer has one replica that answers GET /.
func (e *env) waitServing(ctx context.Context, p *peer, pr *prober) (harness.Target, error) {
	deadline := time.Now().Add(e.startupMax)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ts, err := p.running(ctx, e.d)
		switch {
		case err != nil:
			last = err
		case len(ts) == 1:
			if _, err := pr.identify(ctx, ts[0]); err == nil {
				return ts[0], nil
			} else {
				last = err
			}
		default:
			last = fmt.Errorf("%d running replicas, want 1", len(ts))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return harness.Target{}, fmt.Errorf("%s: no serving replica after %s: %v", p.name, e.startupMax, last)
}

func (e *env) setupAlways(ctx context.Context, p *peer) error {
	net, name := prefix+"-always", prefix+"-always"
	p.teardown = func(ctx context.Context) error {
		_, err1 := harness.Run(ctx, "docker", "rm", "-f", name)
		_, err2 := harness.Run(ctx, "docker", "network", "rm", net)
		return harness.FirstErr(err1, err2)
	}
	if _, err := harness.Run(ctx, "docker", "network", "create", "--label", benchLabel, net); err != nil {
		return err
	}
	_, err := harness.Run(ctx, "docker", "run", "-d", "--name", name, "--network", net, "--restart=always",
		"--label", benchLabel, "--label", "io.tend.bench.peer=always", e.image)
	p.Replicas = harness.Replicas{Labels: []string{"io.tend.bench.peer=always"}, Addr: e.onNetwork(net)}
	return err
}

func (e *env) setupSwarm(ctx context.Context, p *peer, zeroDelay bool) error {
	svc := prefix + "-swarm"
	if zeroDelay {
		svc += "0"
	}
	net := svc + "-net"
	p.teardown = func(ctx context.Context) error { return e.removeService(ctx, svc, net) }
	driver := []string{"-d", "bridge", "--scope", "swarm"}
	addr := e.onNetwork(net)
	if e.swarmNet == "overlay" {
		driver, addr = []string{"-d", "overlay"}, e.d.GWBridgeAddress
	}
	args := append([]string{"network", "create", "--label", benchLabel}, driver...)
	if _, err := harness.Run(ctx, "docker", append(args, net)...); err != nil {
		return err
	}
	args = []string{"service", "create", "-d", "--quiet", "--name", svc, "--network", net,
		"--endpoint-mode", "dnsrr", "--restart-condition", "any", "--no-resolve-image",
		"--label", benchLabel, "--container-label", benchLabel}
	if zeroDelay {
		args = append(args, "--restart-delay", "0s")
	}
	if _, err := harness.Run(ctx, "docker", append(args, e.image)...); err != nil {
		return err
	}
	p.Replicas = harness.Replicas{Labels: []string{"com.docker.swarm.service.name=" + svc}, Addr: addr}
	return nil
}

// removeService removes a swarm service, waits for its task containers to go, then
// removes its network.
func (e *env) removeService(ctx context.Context, svc, net string) error {
	_, err1 := harness.Run(ctx, "docker", "service", "rm", svc)
	harness.AwaitNoContainers(ctx, e.d, "com.docker.swarm.service.name="+svc)
	return harness.FirstErr(err1, harness.RemoveNetwork(ctx, e.d, net))
}

const tendCompose = `# written by bench/recovery: one replica of the demo service, restarted on any exit
services:
  demo:
    image: %s
    deploy:
      replicas: 1
      restart_policy:
        condition: any
`

func (e *env) setupTend(ctx context.Context, p *peer) error {
	if why := harness.TendMissing(e.tendBin); why != "" {
		p.skip = why
		return nil
	}
	t, err := harness.StartTend(ctx, e.tendBin)
	if err != nil {
		return err
	}
	project := prefix + "-tend"
	p.teardown = func(ctx context.Context) error {
		_, err1 := t.Run(ctx, "down", "-p", project)
		err2 := t.Stop()
		err3 := harness.SweepTend(ctx, e.d, project)
		return harness.FirstErr(err1, err2, err3)
	}
	if err := t.Up(ctx, project, "compose.yaml", fmt.Sprintf(tendCompose, e.image), 2*time.Minute); err != nil {
		return err
	}
	p.Replicas = harness.Replicas{Labels: []string{"io.tend.project=" + project, "io.tend.service=demo"}, Addr: e.d.BridgeAddress}
	return nil
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
	harness.SweepLeftovers(ctx, d, benchLabel, "io.tend.project="+prefix+"-tend")
}
