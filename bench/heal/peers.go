package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

const (
	prefix     = "tendbench-heal"
	benchLabel = "io.tend.bench=heal"
)

// peer is one way of keeping the demo replica healthy, measured by the same meter.
type peer struct {
	key, name string
	skip      string // why it was not measured; empty when it was
	// Replicas finds the peer's containers; its setup fills it in.
	harness.Replicas
	// project is the tend project of a tend peer, whose journal is read after each trial.
	project  string
	teardown func(ctx context.Context) error
	trials   []trial
}

// env is what the peers share: the engine, one tend daemon for both tend peers, and the
// swarm mode for both swarm peers.
type env struct {
	d          *harness.Docker
	image      string
	tendBin    string
	startupMax time.Duration
	settle     time.Duration
	tend       *harness.Tend
	swarm      *harness.SwarmMode
	swarmErr   error
}

// teardown removes every peer's replica, then stops tend's daemon and leaves the swarm
// when the benchmark joined it. It prints what failed.
func (e *env) teardown(ctx context.Context, peers []*peer) error {
	var errs []error
	note := func(what string, err error) {
		if err != nil {
			fmt.Printf("cleanup %s: %v\n", what, err)
			errs = append(errs, err)
		}
	}
	for _, p := range slices.Backward(peers) {
		if p.teardown != nil {
			note(p.name, p.teardown(ctx))
		}
	}
	if e.tend != nil {
		note("tend serve", e.tend.Stop())
	}
	note("swarm", e.swarm.Leave(ctx, e.d))
	return harness.FirstErr(errs...)
}

// waitHealthy waits until the peer has exactly one running replica, which answers
// GET /health with 200 and is healthy as the peer sees it; with settled, also until its
// process has run e.settle.
func (e *env) waitHealthy(ctx context.Context, p *peer, m *meter, settled bool) (harness.Target, error) {
	deadline := time.Now().Add(e.startupMax)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		t, err := e.healthy(ctx, p, m)
		if err == nil && settled {
			var id identity
			if id, err = m.identify(ctx, t); err == nil {
				if wait := time.Until(id.started.Add(e.settle)); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
						return t, ctx.Err()
					}
				}
			}
		}
		if err == nil {
			return t, nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return harness.Target{}, ctx.Err()
	}
	return harness.Target{}, fmt.Errorf("%s: no healthy replica after %s: %v", p.name, e.startupMax, last)
}

// healthy checks once: one running replica, its engine health check (if any) healthy,
// tend's verdict ready (tend peers), and GET /health answered with 200.
func (e *env) healthy(ctx context.Context, p *peer, m *meter) (harness.Target, error) {
	cs, err := e.d.Containers(ctx, false, p.Labels...)
	if err != nil {
		return harness.Target{}, err
	}
	if len(cs) != 1 {
		return harness.Target{}, fmt.Errorf("%d running replicas, want 1", len(cs))
	}
	if st := cs[0].Status; strings.Contains(st, "(") && !strings.Contains(st, "(healthy)") {
		return harness.Target{}, fmt.Errorf("%s: %s", cs[0].Name(), st)
	}
	t, ok, err := p.Target(ctx, cs[0].ID)
	if err != nil {
		return t, err
	}
	if !ok {
		return t, fmt.Errorf("%s has no address yet", cs[0].Name())
	}
	if p.project != "" {
		if err := e.tendReady(ctx, p.project); err != nil {
			return t, err
		}
	}
	return t, m.health(ctx, t)
}

// tendReady checks that tend reports the project's one replica ready, with nothing
// pending beside it.
func (e *env) tendReady(ctx context.Context, project string) error {
	out, err := e.tend.Run(ctx, "ps", "--json", "-p", project)
	if err != nil {
		return err
	}
	var reps []struct {
		Container string `json:"container"`
		Ready     bool   `json:"ready"`
		Note      string `json:"note"`
	}
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		return fmt.Errorf("tend ps --json: %w", err)
	}
	if len(reps) != 1 || !reps[0].Ready || reps[0].Note != "" {
		return fmt.Errorf("tend ps: %s", strings.Join(strings.Fields(out), " "))
	}
	return nil
}

const tendProbeCompose = `# written by bench/heal: one replica of the demo service with an x-tend liveness probe
services:
  demo:
    image: %s
    x-tend:
      liveness:
        http: {port: 8080, path: /health}
        interval: %s
        timeout: %s
        failure_threshold: %d
`

const tendHealthcheckCompose = `# written by bench/heal: one replica of the demo service with a compose healthcheck only
services:
  demo:
    image: %s
    healthcheck:
      test: ["CMD", "/demo", "-probe", "` + probeURL + `"]
      interval: %s
      timeout: %s
      retries: %d
`

// setupTend starts the shared `tend serve` if needed and hands it a project with one
// replica, described by compose (a format with the image and the health settings).
func (e *env) setupTend(ctx context.Context, p *peer, compose string) error {
	if why := harness.TendMissing(e.tendBin); why != "" {
		p.skip = why
		return nil
	}
	if e.tend == nil {
		t, err := harness.StartTend(ctx, e.tendBin)
		if err != nil {
			return err
		}
		e.tend = t
	}
	t := e.tend
	project := prefix + "-" + p.key
	p.teardown = func(ctx context.Context) error {
		_, err1 := t.Run(ctx, "down", "-p", project)
		return harness.FirstErr(err1, harness.SweepTend(ctx, e.d, project))
	}
	body := fmt.Sprintf(compose, e.image, checkInterval, checkTimeout, failureThreshold)
	if err := t.Up(ctx, project, p.key+".yaml", body, 2*time.Minute); err != nil {
		return err
	}
	p.Replicas = harness.Replicas{Labels: []string{"io.tend.project=" + project, "io.tend.service=demo"}, Addr: e.d.BridgeAddress}
	p.project = project
	return nil
}

// setupDocker runs the replica as `docker run -d --restart=always` would, with the exec
// health check, on its own network.
func (e *env) setupDocker(ctx context.Context, p *peer) error {
	net, name := prefix+"-docker", prefix+"-docker"
	p.teardown = func(ctx context.Context) error {
		_, err1 := harness.Run(ctx, "docker", "rm", "-f", name)
		_, err2 := harness.Run(ctx, "docker", "network", "rm", net)
		return harness.FirstErr(err1, err2)
	}
	if _, err := harness.Run(ctx, "docker", "network", "create", "--label", benchLabel, net); err != nil {
		return err
	}
	_, err := e.d.RunContainer(ctx, harness.ContainerSpec{
		Name: name, Image: e.image, Network: net, Restart: "always",
		Labels: map[string]string{"io.tend.bench": "heal", "io.tend.bench.peer": "docker"},
		Health: &harness.Healthcheck{Test: []string{"CMD", "/demo", "-probe", probeURL},
			Interval: checkInterval, Timeout: checkTimeout, Retries: failureThreshold},
	})
	p.Replicas = harness.Replicas{Labels: []string{"io.tend.bench.peer=docker"}, Addr: e.d.BridgeAddress}
	return err
}
