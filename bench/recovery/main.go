// Command recovery measures crash-to-serving recovery of one replica of the demo service
// under several supervisors in one run: the Docker engine's restart policy, Swarm (with
// its default restart delay and with 0 s) and tend. For each trial it asks the replica to
// crash (POST /crash) and times how long until a new process answers GET /. It learns of
// the new process from the engine's event stream, as tend does, and then polls only the
// started container's address.
//
// Usage (as root; see bench/README.md):
//
//	go run ./bench/recovery -tend /tmp/tend -trials 9
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

type config struct {
	trials         int
	peers          []harness.Peer
	image          string
	tendBin        string
	swarmNet       string
	settle         time.Duration
	timeout        time.Duration
	dialTimeout    time.Duration
	requestTimeout time.Duration
	gap            time.Duration
	eventWait      time.Duration
	neigh          bool
	pollOld        bool
}

// allPeers is the order peers are listed in.
var allPeers = []harness.Peer{
	{Key: "always", Name: "restart=always"},
	{Key: "swarm", Name: "swarm (default delay)"},
	{Key: "swarm-0s", Name: "swarm (delay 0s)"},
	{Key: "tend", Name: "tend"},
}

func main() {
	var c config
	var peers string
	flag.IntVar(&c.trials, "trials", 9, "crashes per peer (at least 7 for the recorded figures)")
	flag.StringVar(&peers, "peers", "always,swarm,swarm-0s,tend", "peers to measure, comma-separated: always, swarm, swarm-0s, tend")
	flag.StringVar(&c.image, "image", "tend-demo:dev", "demo image (examples/demo/build.sh)")
	flag.StringVar(&c.tendBin, "tend", "", "tend binary; the tend peer is skipped when it is missing")
	flag.StringVar(&c.swarmNet, "swarm-net", "overlay", "network for swarm services: overlay (what swarm stacks use; polled on docker_gwbridge) or bridge (a swarm-scoped bridge, like the other peers)")
	flag.DurationVar(&c.settle, "settle", 11*time.Second, "crash a replica only after its process has run this long (the engine, and tend by default, reset restart backoff after 10 s)")
	flag.DurationVar(&c.timeout, "timeout", 60*time.Second, "give up on a trial after this long")
	flag.DurationVar(&c.dialTimeout, "dial-timeout", 50*time.Millisecond, "per-attempt connect timeout")
	flag.DurationVar(&c.requestTimeout, "request-timeout", 500*time.Millisecond, "per-attempt request timeout")
	flag.DurationVar(&c.gap, "gap", 5*time.Millisecond, "pause between GET / attempts on the started replica's address")
	flag.DurationVar(&c.eventWait, "event-wait", 30*time.Second, "fail a trial when no start event of the peer arrives this long after the crash")
	flag.BoolVar(&c.neigh, "neigh-reset", true, "delete the target's neighbour (ARP) entry after each failed attempt; false shows the ~1 s stall")
	flag.BoolVar(&c.pollOld, "poll-old", true, "poll the replica's address from the crash on, as well as following start events to a new container: a restart in place (tend's shim) produces no engine event; with -neigh-reset=false it shows the neighbour-cache stall")
	flag.Parse()
	var err error
	if c.peers, err = harness.PickPeers(allPeers, peers); err != nil {
		fmt.Fprintf(os.Stderr, "recovery: %v\n", err)
		os.Exit(2)
	}
	if c.swarmNet != "bridge" && c.swarmNet != "overlay" {
		fmt.Fprintln(os.Stderr, "recovery: -swarm-net must be bridge or overlay")
		os.Exit(2)
	}
	harness.Main(func(ctx context.Context) int { return run(ctx, c) })
}

func run(ctx context.Context, c config) (code int) {
	d := harness.NewDocker()
	neigh, err := harness.Preflight(ctx, d, c.image, c.neigh)
	if err != nil {
		fmt.Fprintf(os.Stderr, "recovery: %v\n", err)
		return 1
	}
	defer neigh.Close()
	pr := newProber(c.dialTimeout, c.requestTimeout, c.gap, c.timeout, c.eventWait, neigh, d)
	pr.pollOld = c.pollOld
	e := &env{d: d, image: c.image, swarmNet: c.swarmNet, tendBin: c.tendBin, startupMax: 90 * time.Second}

	printHeader(c)
	sweepLeftovers(ctx, d)

	var peers []*peer
	for _, p := range c.peers {
		peers = append(peers, &peer{key: p.Key, name: p.Name})
	}
	var sw *harness.SwarmMode
	// Cleanup runs even after ^C, under its own deadline, which starts when it does.
	defer func() {
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		for _, p := range slices.Backward(peers) {
			if p.teardown == nil {
				continue
			}
			if err := p.teardown(cleanCtx); err != nil {
				fmt.Printf("cleanup %s: %v\n", p.name, err)
				code = 1
			}
		}
		if err := sw.Leave(cleanCtx, d); err != nil {
			fmt.Printf("cleanup swarm: %v\n", err)
			code = 1
		}
	}()

	if slices.ContainsFunc(peers, func(p *peer) bool { return strings.HasPrefix(p.key, "swarm") }) {
		if sw, err = harness.EnsureSwarm(ctx, d); err != nil {
			for _, p := range peers {
				if strings.HasPrefix(p.key, "swarm") {
					p.skip = "swarm unavailable: " + err.Error()
				}
			}
		} else if sw.Initialized {
			fmt.Println("swarm: initialized a single-node swarm on 127.0.0.1 (left again at the end)")
		}
	}
	if !setupPeers(ctx, e, pr, peers) {
		code = 1
	}

	fmt.Println()
	fmt.Println("trials (recovery = POST /crash sent -> first GET / answered by a new instance):")
	for i := 0; i < c.trials && ctx.Err() == nil; i++ {
		for j := range peers {
			p := peers[(i+j)%len(peers)] // rotate the order so no peer always follows the same one
			if p.skip != "" || ctx.Err() != nil {
				continue
			}
			tr := runTrial(ctx, e, pr, p, c.settle)
			p.trials = append(p.trials, tr)
			printTrial(i+1, c.trials, p, tr)
		}
	}
	printSummary(peers, c)
	if ctx.Err() != nil {
		fmt.Println("interrupted; cleaning up")
		code = 1
	}
	return code
}

// setupPeers starts each peer's replica and waits until it serves; a peer that fails is
// marked skipped with the reason. It reports whether every peer that should run does.
func setupPeers(ctx context.Context, e *env, pr *prober, peers []*peer) bool {
	ok := true
	for _, p := range peers {
		if p.skip != "" {
			continue
		}
		var err error
		switch p.key {
		case "always":
			err = e.setupAlways(ctx, p)
		case "swarm":
			err = e.setupSwarm(ctx, p, false)
		case "swarm-0s":
			err = e.setupSwarm(ctx, p, true)
		case "tend":
			err = e.setupTend(ctx, p)
		}
		if err == nil && p.skip == "" {
			_, err = e.waitServing(ctx, p, pr)
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

// runTrial waits until the peer's replica has settled, then measures one crash.
func runTrial(ctx context.Context, e *env, pr *prober, p *peer, settle time.Duration) trial {
	cur, err := e.waitServing(ctx, p, pr)
	if err != nil {
		return trial{Err: err}
	}
	// The process's own start, not the container's: a restart in place (tend's
	// shim) starts a new process in the same container.
	id, err := pr.identify(ctx, cur)
	if err != nil {
		return trial{Err: err}
	}
	started, err := time.Parse(time.RFC3339Nano, id.Started)
	if err != nil {
		return trial{Err: fmt.Errorf("replica's start time %q: %w", id.Started, err)}
	}
	if wait := time.Until(started.Add(settle)); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return trial{Err: ctx.Err()}
		}
	}
	return pr.measure(ctx, p, cur)
}

func printHeader(c config) {
	host := harness.Host()
	fmt.Printf("recovery benchmark  %s\n", time.Now().Format(time.RFC3339))
	fmt.Printf("host: %s; image %s; %d trials per peer; swarm network: %s\n", host, c.image, c.trials, c.swarmNet)
	reset := "after each failed attempt the address's neighbour (ARP) entry is deleted, so the next attempt resolves afresh"
	if !c.neigh {
		reset = "neighbour cache left alone (-neigh-reset=false): expect ~1 s stalls"
	}
	if c.pollOld {
		reset += "; until the start event the crashed replica's address is polled as well (-poll-old)"
	}
	fmt.Printf("method: before the crash the harness subscribes to the engine's event stream (GET /events, type=container,\n"+
		"  event=start, the peer's labels), as tend and the engine learn of starts; nothing lists containers during a trial.\n"+
		"  On a start event it looks that container's address up once, then sends it GET / every %s on a fresh\n"+
		"  connection (connect timeout %s, request timeout %s); %s.\n"+
		"  No start event within %s fails the trial. A replica is crashed only after it has run %s.\n"+
		"  Phases from the engine's timestamps: exit = crash sent -> old container's FinishedAt; restart = FinishedAt ->\n"+
		"  new StartedAt; seen = StartedAt -> answer (of which event = StartedAt -> start event read by the harness).\n"+
		"  lag = answer time - the new process's own start time (GET / \"started\"): a stalled poller shows ~1000 ms.\n",
		c.gap, c.dialTimeout, c.requestTimeout, reset, c.eventWait, c.settle)
}

func printTrial(i, n int, p *peer, tr trial) {
	if tr.Err != nil {
		fmt.Printf("  %d/%d  %-22s  FAILED: %v\n", i, n, p.name, tr.Err)
		return
	}
	phases := "phases n/a"
	if tr.PhaseOK {
		phases = fmt.Sprintf("= exit %3s + restart %4s + seen %3s ms (event %3s, address %2s)",
			harness.Ms(tr.Exit), harness.Ms(tr.Restart), harness.Ms(tr.Seen), harness.Ms(tr.Notice), harness.Ms(tr.Lookup))
	}
	lag := "n/a"
	if tr.LagOK {
		lag = harness.Ms(tr.LagProc)
	}
	fmt.Printf("  %d/%d  %-22s  %s s %s  lag %3s ms  attempts %d (failed %d, timed out %d, longest %s ms)%s\n",
		i, n, p.name, harness.Secs(tr.Recovery), phases, lag, tr.Attempts, tr.Failed, tr.Timeouts, harness.Ms(tr.SlowMax), startsNote(tr.Starts))
}

// startsNote mentions start events beyond the one expected.
func startsNote(n int) string {
	if n == 1 {
		return ""
	}
	return fmt.Sprintf(", %d start events", n)
}
