package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
	// labels select the peer's replica containers (all must match): in the event-stream
	// filter during a trial, and in container listings between trials.
	labels []string
	// addr looks up a replica container's address, once per start event; "" when the
	// container has none (yet).
	addr     func(ctx context.Context, id string) (string, error)
	teardown func(ctx context.Context) error
	trials   []trial
}

// target returns the address of container id as a Target the prober may poll.
func (p *peer) target(ctx context.Context, id string) (t harness.Target, ok bool, err error) {
	ip, err := p.addr(ctx, id)
	if err != nil || ip == "" {
		return t, false, err
	}
	t, err = harness.LocalTarget(id, ip)
	return t, err == nil, err
}

// running lists the peer's running replicas with an address. It is used only between
// trials (waiting for a replica to serve), never while a recovery is being timed.
func (p *peer) running(ctx context.Context, d *harness.Docker) ([]harness.Target, error) {
	cs, err := d.Containers(ctx, false, p.labels...)
	if err != nil {
		return nil, err
	}
	var ts []harness.Target
	for _, c := range cs {
		t, ok, err := p.target(ctx, c.ID)
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

// onAnyBridge looks up the container's first address that is on a bridge of this host
// (one inspect).
func (e *env) onAnyBridge(ctx context.Context, id string) (string, error) {
	cs, err := e.d.Inspect(ctx, id)
	if err != nil {
		return "", err
	}
	for _, n := range cs.NetworkSettings.Networks {
		if _, err := harness.LocalTarget(id, n.IPAddress); err == nil {
			return n.IPAddress, nil
		}
	}
	return "", nil
}

// onGWBridge looks up a swarm task's address on docker_gwbridge (one network inspect):
// its overlay address is not reachable from the host.
func (e *env) onGWBridge(ctx context.Context, id string) (string, error) {
	eps, err := e.d.NetworkEndpoints(ctx, "docker_gwbridge")
	if err != nil {
		return "", err
	}
	return eps[id], nil
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
		return firstErr(err1, err2)
	}
	if _, err := harness.Run(ctx, "docker", "network", "create", "--label", benchLabel, net); err != nil {
		return err
	}
	_, err := harness.Run(ctx, "docker", "run", "-d", "--name", name, "--network", net, "--restart=always",
		"--label", benchLabel, "--label", "io.tend.bench.peer=always", e.image)
	p.labels, p.addr = []string{"io.tend.bench.peer=always"}, e.onNetwork(net)
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
		driver, addr = []string{"-d", "overlay"}, e.onGWBridge
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
	p.labels, p.addr = []string{"com.docker.swarm.service.name=" + svc}, addr
	return nil
}

// removeService removes a swarm service, waits for its task containers to go, then
// removes its network.
func (e *env) removeService(ctx context.Context, svc, net string) error {
	_, err1 := harness.Run(ctx, "docker", "service", "rm", svc)
	label := "com.docker.swarm.service.name=" + svc
	for i := 0; i < 150; i++ {
		cs, err := e.d.Containers(ctx, true, label)
		if err != nil || len(cs) == 0 {
			break
		}
		if i == 149 {
			for _, c := range cs {
				harness.Run(ctx, "docker", "rm", "-f", c.ID)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	var err2 error
	for i := 0; i < 20; i++ { // the network can stay busy for a moment after its last task
		if _, err2 = harness.Run(ctx, "docker", "network", "rm", net); err2 == nil || !e.d.NetworkExists(ctx, net) {
			err2 = nil
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	return firstErr(err1, err2)
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
		err3 := e.sweepTend(ctx, project)
		return firstErr(err1, err2, err3)
	}
	file := filepath.Join(t.Dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(tendCompose, e.image)), 0o644); err != nil {
		return err
	}
	upCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := t.Run(upCtx, "up", "-f", file, "-p", project, "--wait"); err != nil {
		return err
	}
	p.labels, p.addr = []string{"io.tend.project=" + project, "io.tend.service=demo"}, e.onAnyBridge
	return nil
}

// sweepTend removes whatever `tend down` left of the project, and says so: a leftover
// is a tend bug worth reporting, not something to hide.
func (e *env) sweepTend(ctx context.Context, project string) error {
	var left []string
	cs, _ := e.d.Containers(ctx, true, "io.tend.project="+project)
	for _, c := range cs {
		harness.Run(ctx, "docker", "rm", "-f", c.ID)
		left = append(left, "container "+c.Name())
	}
	ns, _ := e.d.Networks(ctx, map[string][]string{"label": {"io.tend.project=" + project}})
	for _, n := range ns {
		harness.Run(ctx, "docker", "network", "rm", n.ID)
		left = append(left, "network "+n.Name)
	}
	if len(left) > 0 {
		return fmt.Errorf("tend down left %s (removed by the harness)", strings.Join(left, ", "))
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
