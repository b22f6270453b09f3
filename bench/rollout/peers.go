package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

const (
	checked   = "tend-demo:rollout-bench" // the demo with an exec-form HEALTHCHECK, for both peers
	project   = "rolloutbench"
	swarmName = "rolloutbench-swarm"
	benchMark = "io.tend.bench=rollout"
)

// checkedImage builds the demo image with an exec-form health check (a scratch image
// has no shell): Swarm then waits for a new task to be healthy, and tend reads the same check.
func checkedImage(ctx context.Context, base string) (string, error) {
	dockerfile := fmt.Sprintf("FROM %s\nHEALTHCHECK --interval=1s --timeout=3s --retries=3 CMD [\"/demo\", \"-probe\", \"http://127.0.0.1:8080/health\"]\n", base)
	cmd := exec.CommandContext(ctx, "docker", "build", "-q", "-t", checked, "-")
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	cmd.Stdin = strings.NewReader(dockerfile)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v: %s", checked, err, out)
	}
	return checked, nil
}

// versions is what 20 fresh GETs answered, by DEMO_NAME: "v1", or "v1,v2" mid-way.
func versions(ctx context.Context, pick func() string) string {
	seen := map[string]bool{}
	c := http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 20 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pick()+"/", nil)
		resp, err := c.Do(req)
		if err != nil {
			seen["error"] = true
			continue
		}
		var b struct{ Name string }
		_ = json.NewDecoder(resp.Body).Decode(&b)
		resp.Body.Close()
		seen[b.Name] = true
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// tendPeer runs the service as a compose project under its own tend daemon.
type tendPeer struct {
	bin      string
	image    string
	replicas int
	port     int
	t        *harness.Tend
}

func (p *tendPeer) pick() string { return fmt.Sprintf("http://127.0.0.1:%d", p.port) }

func (p *tendPeer) compose(version string, bad bool) string {
	cmd := ""
	if bad {
		cmd = `    command: ["-exit-after", "100ms", "-exit-code", "1"]` + "\n"
	}
	return fmt.Sprintf(`services:
  web:
    image: %s
    environment: {DEMO_NAME: %s}
%s    deploy: {replicas: %d}
    ports: ["127.0.0.1:%d:8080"]
`, p.image, version, cmd, p.replicas, p.port)
}

func (p *tendPeer) setup(ctx context.Context) error {
	t, err := harness.StartTend(ctx, p.bin)
	if err != nil {
		return err
	}
	p.t = t
	return t.Up(ctx, project, "compose.yaml", p.compose("v1", false), 2*time.Minute)
}

func (p *tendPeer) update(ctx context.Context, bad bool) (func(context.Context) (string, error), error) {
	seq, err := p.lastSeq(ctx)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(p.t.Dir, "compose.yaml")
	if err := os.WriteFile(path, []byte(p.compose("v2", bad)), 0o644); err != nil {
		return nil, err
	}
	if _, err := p.t.Run(ctx, "up", "-f", path, "-p", project); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (string, error) {
		for {
			es, err := p.journal(ctx)
			if err != nil {
				return "", err
			}
			for _, e := range es {
				if e.Seq > seq && e.Reason == "done" && e.Action == "rollout" {
					return "completed", nil
				}
				if e.Seq > seq && e.Reason == "done" && e.Action == "rollback" {
					return "rolled back (" + p.why(es, seq) + ")", nil
				}
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}, nil
}

type entry struct {
	Seq     uint64 `json:"seq"`
	Action  string `json:"action"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// why is the failed check a rollback names, from the journal after seq.
func (p *tendPeer) why(es []entry, seq uint64) string {
	for _, e := range es {
		if e.Seq > seq && e.Action == "rollback" && e.Reason != "done" && e.Reason != "started" {
			return e.Reason + ": " + e.Message
		}
	}
	return "?"
}

func (p *tendPeer) journal(ctx context.Context) ([]entry, error) {
	out, err := p.t.Run(ctx, "events", "--json", "-n", "0", "-p", project)
	if err != nil {
		return nil, err
	}
	var es []entry
	for _, l := range strings.Split(out, "\n") {
		var e entry
		if json.Unmarshal([]byte(l), &e) == nil {
			es = append(es, e)
		}
	}
	return es, nil
}

func (p *tendPeer) lastSeq(ctx context.Context) (uint64, error) {
	es, err := p.journal(ctx)
	if err != nil || len(es) == 0 {
		return 0, err
	}
	return es[len(es)-1].Seq, nil
}

func (p *tendPeer) teardown(ctx context.Context) error {
	if p.t == nil {
		return nil
	}
	_, err := p.t.Run(ctx, "down", "-p", project)
	// The daemon's log outlives it, for reading a rollout's pace afterwards.
	keep := fmt.Sprintf("/tmp/bench-rollout-tend-%s.log", time.Now().UTC().Format("150405"))
	_ = os.WriteFile(keep, []byte(p.t.Log()), 0o644)
	fmt.Printf("  (tend's log: %s)\n", keep)
	return harness.FirstErr(err, p.t.Stop())
}

// swarmPeer runs the service as a Swarm service on an overlay network. Without IPVS
// there is no routing mesh here, so the load goes to the healthy running tasks'
// docker_gwbridge addresses in turn, the list refreshed every 100 ms.
type swarmPeer struct {
	d        *harness.Docker
	image    string
	replicas int
	mode     *harness.SwarmMode
	rr       roundRobin
	stop     context.CancelFunc
	done     chan struct{}
}

const swarmNet = swarmName + "-net"

func (p *swarmPeer) pick() string { return p.rr.pick() }

func (p *swarmPeer) setup(ctx context.Context) error {
	mode, err := harness.EnsureSwarm(ctx, p.d)
	if err != nil {
		return err
	}
	p.mode = mode
	if _, err := harness.Run(ctx, "docker", "network", "create", "-d", "overlay", "--label", benchMark, swarmNet); err != nil {
		return err
	}
	_, err = harness.Run(ctx, "docker", "service", "create", "-d", "--quiet", "--name", swarmName,
		"--replicas", strconv.Itoa(p.replicas), "--network", swarmNet, "--endpoint-mode", "dnsrr",
		"--update-order", "start-first", "--update-failure-action", "rollback", "--rollback-order", "start-first",
		"--env", "DEMO_NAME=v1", "--no-resolve-image", "--label", benchMark, "--container-label", benchMark, p.image)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.stop, p.done = cancel, make(chan struct{})
	go p.follow(wctx)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p.rr.mu.Lock()
		n := len(p.rr.addrs)
		p.rr.mu.Unlock()
		if n == p.replicas && versions(ctx, p.pick) == "v1" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swarm service not serving with %d healthy tasks after 2m", p.replicas)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// follow keeps the addresses of the service's healthy running tasks, as a
// balancer that learns of every task change at once would.
func (p *swarmPeer) follow(ctx context.Context) {
	defer close(p.done)
	for ctx.Err() == nil {
		cs, err := p.d.Containers(ctx, false, "com.docker.swarm.service.name="+swarmName)
		eps, err2 := p.d.NetworkEndpoints(ctx, "docker_gwbridge")
		if err == nil && err2 == nil {
			var addrs []string
			for _, c := range cs {
				if ip := eps[c.ID]; ip != "" && strings.Contains(c.Status, "(healthy)") {
					addrs = append(addrs, "http://"+ip+":8080")
				}
			}
			slices.Sort(addrs)
			p.rr.set(addrs)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *swarmPeer) update(ctx context.Context, bad bool) (func(context.Context) (string, error), error) {
	args := []string{"service", "update", "-d", "--quiet", "--env-add", "DEMO_NAME=v2", "--no-resolve-image"}
	if bad {
		args = append(args, "--args", "-exit-after 100ms -exit-code 1")
	}
	if _, err := harness.Run(ctx, "docker", append(args, swarmName)...); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (string, error) {
		for {
			st, err := harness.Run(ctx, "docker", "service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", swarmName)
			if err != nil {
				return "", err
			}
			switch st {
			case "completed":
				return "completed", nil
			case "rollback_completed":
				return "rolled back", nil
			case "paused", "rollback_paused":
				return st, nil
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}, nil
}

func (p *swarmPeer) teardown(ctx context.Context) error {
	if p.stop != nil {
		p.stop()
		<-p.done
	}
	_, err := harness.Run(ctx, "docker", "service", "rm", swarmName)
	harness.AwaitNoContainers(ctx, p.d, "com.docker.swarm.service.name="+swarmName)
	return harness.FirstErr(err, harness.RemoveNetwork(ctx, p.d, swarmNet), p.mode.Leave(ctx, p.d))
}
