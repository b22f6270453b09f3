// Command heal measures how long each supervisor takes to replace a replica that turned
// sick: its process keeps running and serving, but its health check fails (the demo's
// POST /sick). Each trial runs from POST /sick until a different container of the peer
// answers GET /health with 200 and the sick container has stopped. Peers, one replica
// each, same check (every 1 s, timeout 1 s, 3 failures): tend with an x-tend liveness
// probe, tend with a compose healthcheck only, Swarm with 0 s and with its default
// restart delay, and plain Docker with --restart=always, which never replaces an
// unhealthy container (the trial shows it, up to a cap).
//
// Everything is observed from the outside, the same way for every peer: the engine's
// event stream (the peer's containers: create, start, kill, die, destroy, health_status)
// and HTTP to the new container's address. tend's journal is read after each trial only
// to split tend's time into its steps.
//
// Usage (as root; see bench/README.md):
//
//	go run ./bench/heal -tend /tmp/tend -trials 5
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// The health settings every peer gets.
const (
	checkInterval    = time.Second
	checkTimeout     = time.Second
	failureThreshold = 3
	probeURL         = "http://127.0.0.1:8080/health"
)

type config struct {
	trials         int
	peers          []harness.Peer
	image          string
	tendBin        string
	settle         time.Duration
	limit          time.Duration
	dialTimeout    time.Duration
	requestTimeout time.Duration
	gap            time.Duration
	linger         time.Duration
	neigh          bool
}

// allPeers is the order peers are listed in.
var allPeers = []harness.Peer{
	{Key: "tend", Name: "tend (x-tend liveness)"},
	{Key: "tend-hc", Name: "tend (healthcheck only)"},
	{Key: "swarm-0s", Name: "swarm (delay 0s)"},
	{Key: "swarm", Name: "swarm (default delay)"},
	{Key: "docker", Name: "docker restart=always"},
}

func main() {
	var c config
	var peers string
	flag.IntVar(&c.trials, "trials", 5, "sick replicas per peer")
	flag.StringVar(&peers, "peers", "tend,tend-hc,swarm-0s,swarm,docker", "peers to measure, comma-separated: tend, tend-hc, swarm-0s, swarm, docker")
	flag.StringVar(&c.image, "image", "tend-demo:dev", "demo image (examples/demo/build.sh)")
	flag.StringVar(&c.tendBin, "tend", "", "tend binary; the tend peers are skipped when it is missing")
	flag.DurationVar(&c.settle, "settle", 11*time.Second, "make a replica sick only after its process has run this long (tend resets a crash streak, which replacements count in, after 10 s)")
	flag.DurationVar(&c.limit, "cap", 30*time.Second, "end a trial without a replacement after this long (plain Docker never replaces: every trial of it runs this long; Swarm took up to 24 s here)")
	flag.DurationVar(&c.dialTimeout, "dial-timeout", 50*time.Millisecond, "per-attempt connect timeout")
	flag.DurationVar(&c.requestTimeout, "request-timeout", 500*time.Millisecond, "per-attempt request timeout")
	flag.DurationVar(&c.gap, "gap", 5*time.Millisecond, "pause between GET /health attempts on the new container's address")
	flag.DurationVar(&c.linger, "linger", time.Second, "after a trial, keep following events this long for the sick container's removal (not part of the time)")
	flag.BoolVar(&c.neigh, "neigh-reset", true, "delete the new container's neighbour (ARP) entry after each failed attempt (see bench/recovery)")
	flag.Parse()
	var err error
	if c.peers, err = harness.PickPeers(allPeers, peers); err != nil {
		fmt.Fprintf(os.Stderr, "heal: %v\n", err)
		os.Exit(2)
	}
	harness.Main(func(ctx context.Context) int { return run(ctx, c) })
}

func run(ctx context.Context, c config) (code int) {
	d := harness.NewDocker()
	neigh, err := harness.Preflight(ctx, d, c.image, c.neigh)
	if err != nil {
		fmt.Fprintf(os.Stderr, "heal: %v\n", err)
		return 1
	}
	defer neigh.Close()
	m := newMeter(c, neigh, d)
	e := &env{d: d, image: c.image, tendBin: c.tendBin, startupMax: 90 * time.Second, settle: c.settle}

	printHeader(c)
	sweepLeftovers(ctx, d)

	var peers []*peer
	for _, p := range c.peers {
		peers = append(peers, &peer{key: p.Key, name: p.Name})
	}
	// Cleanup runs even after ^C, under its own deadline, which starts when it does.
	defer func() {
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if err := e.teardown(cleanCtx, peers); err != nil {
			code = 1
		}
	}()

	if !setupPeers(ctx, e, m, peers) {
		code = 1
	}

	fmt.Println()
	fmt.Println("trials (POST /sick sent at 0; times in seconds after it; done = a new container answers GET /health 200 and the sick one has stopped):")
	for i := 0; i < c.trials && ctx.Err() == nil; i++ {
		for j := range peers {
			p := peers[(i+j)%len(peers)] // rotate the order so no peer always follows the same one
			if p.skip != "" || ctx.Err() != nil {
				continue
			}
			tr := runTrial(ctx, e, m, p)
			p.trials = append(p.trials, tr)
			printTrial(i+1, c.trials, p, tr)
		}
	}
	printSummary(peers)
	if ctx.Err() != nil {
		fmt.Println("interrupted; cleaning up")
		code = 1
	}
	return code
}

// setupPeers starts each peer's replica and waits until it is healthy; a peer that fails
// is marked skipped with the reason. It reports whether every peer that should run does.
func setupPeers(ctx context.Context, e *env, m *meter, peers []*peer) bool {
	ok := true
	for _, p := range peers {
		var err error
		switch p.key {
		case "tend":
			err = e.setupTend(ctx, p, tendProbeCompose)
		case "tend-hc":
			err = e.setupTend(ctx, p, tendHealthcheckCompose)
		case "swarm-0s":
			err = e.setupSwarm(ctx, p, true)
		case "swarm":
			err = e.setupSwarm(ctx, p, false)
		case "docker":
			err = e.setupDocker(ctx, p)
		}
		if err == nil && p.skip == "" {
			_, err = e.waitHealthy(ctx, p, m, false)
		}
		if err != nil {
			p.skip = "setup failed: " + err.Error()
			ok = false
		}
		if p.skip != "" {
			fmt.Printf("%s: not measured: %s\n", p.name, p.skip)
		}
	}
	return ok
}

// runTrial waits until the peer's replica is healthy and has settled, then measures one
// sick replica, and afterwards heals a sick container that is still running, so the peer
// starts the next round healthy.
func runTrial(ctx context.Context, e *env, m *meter, p *peer) trial {
	cur, err := e.waitHealthy(ctx, p, m, true)
	if err != nil {
		return trial{Err: err}
	}
	tr := m.measure(ctx, p, cur)
	if !tr.Done {
		if err := m.heal(ctx, cur); err != nil && tr.Err == nil {
			tr.Err = fmt.Errorf("heal the sick container after the trial: %w", err)
		}
	}
	if p.project != "" && tr.Err == nil {
		e.readJournal(ctx, p, cur.Container, &tr)
	}
	return tr
}

func printHeader(c config) {
	host := harness.Host()
	fmt.Printf("heal benchmark  %s\n", time.Now().Format(time.RFC3339))
	fmt.Printf("host: %s; image %s; %d trials per peer; cap %s\n", host, c.image, c.trials, c.limit)
	fmt.Printf("health settings, every peer: GET /health every %s, timeout %s, unhealthy after %d failures\n"+
		"  (tend: x-tend liveness http probe, or a compose healthcheck; swarm and docker: the engine's exec check\n"+
		"  [\"CMD\", \"/demo\", \"-probe\", %q]).\n", checkInterval, checkTimeout, failureThreshold, probeURL)
	fmt.Printf("method: before POST /sick the harness subscribes to the engine's events for the peer's containers\n"+
		"  (create, start, kill, die, destroy, health_status). On the start of another container it looks its address up\n"+
		"  once and sends it GET /health every %s (fresh connection, connect timeout %s, request timeout %s).\n"+
		"  The trial is done when that answers 200 and the die (or destroy) event of the sick container has arrived;\n"+
		"  not done within %s: \"never\". Milestones are the engine's event times, the harness's answer time,\n"+
		"  the engine's health log (first failing check) and, for tend, its journal (stamped when an action is recorded).\n"+
		"  A replica is made sick only once it is healthy and its process has run %s.\n",
		c.gap, c.dialTimeout, c.requestTimeout, c.limit, c.settle)
}
