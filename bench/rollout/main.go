// Command rollout measures rolling updates under load, side by side in one run on one
// engine: tend (`tend up` of a changed compose file) and Swarm (`docker service update
// --update-order start-first --update-failure-action rollback`). Each peer runs the demo
// service with -replicas replicas (tend behind its proxy on a published port; Swarm's
// routing mesh needs IPVS, which this kernel lacks, so clients go round-robin over the
// addresses of the healthy running tasks, refreshed every 100 ms: a client-side balancer
// that knows the task list at once, kinder than DNS), both with the same exec-form image
// health check, while closed-loop clients send GET /. Two cases:
//
//	good  a changed environment (DEMO_NAME v1 -> v2): time until the update is complete
//	bad   a release whose process exits at start: time until it is rolled back
//
// and for each, the requests that failed meanwhile.
//
// Usage (see bench/README.md):
//
//	go run ./bench/rollout -tend /tmp/tend
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

type config struct {
	tendBin    string
	image      string
	replicas   int
	clients    int
	tendPort   int
	timeout    time.Duration
	peers      []harness.Peer
	cases      []string
	settleLoad time.Duration
}

var allPeers = []harness.Peer{
	{Key: "tend", Name: "tend"},
	{Key: "swarm", Name: "swarm (start-first, rollback)"},
}

// result is one case of one peer.
type result struct {
	took        time.Duration // from the update command to the update complete or rolled back
	end         string        // how it ended: completed, rolled back, or the error
	ok, failed  int
	failures    map[string]int
	onlyVersion string // what GET / answered afterwards
}

func main() {
	var c config
	var peers, cases string
	flag.StringVar(&c.tendBin, "tend", "", "tend binary (go build -o /tmp/tend ./cmd/tend)")
	flag.StringVar(&c.image, "image", "tend-demo:dev", "demo image (examples/demo/build.sh); a health-checked image is built from it")
	flag.IntVar(&c.replicas, "replicas", 5, "replicas of the service")
	flag.IntVar(&c.clients, "clients", 8, "closed-loop keep-alive clients during each update")
	flag.IntVar(&c.tendPort, "tend-port", 18421, "host port of the tend peer")
	flag.DurationVar(&c.timeout, "timeout", 4*time.Minute, "give up on an update after this long")
	flag.DurationVar(&c.settleLoad, "settle", 3*time.Second, "load before and after each update")
	flag.StringVar(&peers, "peers", "tend,swarm", "peers: tend, swarm")
	flag.StringVar(&cases, "cases", "good,bad", "cases: good, bad")
	flag.Parse()
	var err error
	if c.peers, err = harness.PickPeers(allPeers, peers); err != nil {
		fmt.Fprintf(os.Stderr, "rollout: %v\n", err)
		os.Exit(2)
	}
	c.cases = strings.Split(cases, ",")
	harness.Main(func(ctx context.Context) int { return run(ctx, c) })
}

func run(ctx context.Context, c config) int {
	d := harness.NewDocker()
	if _, err := harness.Preflight(ctx, d, c.image, false); err != nil {
		fmt.Fprintf(os.Stderr, "rollout: %v\n", err)
		return 1
	}
	image, err := checkedImage(ctx, c.image)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rollout: %v\n", err)
		return 1
	}
	fmt.Printf("rollout benchmark, %s, %s UTC\n", harness.Host(), time.Now().UTC().Format("2006-01-02 15:04"))
	fmt.Printf("%d replicas of %s, %d keep-alive GET clients, cases %s\n\n", c.replicas, image, c.clients, strings.Join(c.cases, ","))
	results := map[string]map[string]result{}
	for _, p := range c.peers {
		var pr peer
		switch p.Key {
		case "tend":
			if why := harness.TendMissing(c.tendBin); why != "" {
				fmt.Printf("%s: skipped: %s\n", p.Name, why)
				continue
			}
			pr = &tendPeer{bin: c.tendBin, image: image, replicas: c.replicas, port: c.tendPort}
		case "swarm":
			pr = &swarmPeer{d: d, image: image, replicas: c.replicas}
		}
		results[p.Key] = map[string]result{}
		for _, cs := range c.cases {
			r := measure(ctx, c, pr, cs)
			results[p.Key][cs] = r
			fmt.Printf("%-30s %-5s %s\n", p.Name, cs, line(r))
		}
	}
	fmt.Println()
	printSummary(c, results)
	return 0
}

// peer is a supervisor that runs the service and updates it.
type peer interface {
	setup(ctx context.Context) error // v1 running, serving, every replica healthy
	// update starts the update to v2 (bad: a process that exits at start) and returns
	// a function that waits for its end and says how it ended.
	update(ctx context.Context, bad bool) (wait func(ctx context.Context) (string, error), err error)
	teardown(ctx context.Context) error
	// pick is where the next request goes: tend's published port; for Swarm, whose
	// routing mesh needs IPVS (missing here), a healthy task's address in turn.
	pick() string
}

func measure(ctx context.Context, c config, p peer, cs string) result {
	defer func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := p.teardown(tctx); err != nil {
			fmt.Fprintf(os.Stderr, "rollout: teardown: %v\n", err)
		}
	}()
	if err := p.setup(ctx); err != nil {
		return result{end: "setup failed: " + err.Error()}
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	load := runLoad(loadCtx, c.clients, p.pick)
	time.Sleep(c.settleLoad)
	var r result
	start := time.Now()
	wait, err := p.update(ctx, cs == "bad")
	if err == nil {
		uctx, cancel := context.WithTimeout(ctx, c.timeout)
		r.end, err = wait(uctx)
		cancel()
	}
	r.took = time.Since(start)
	if err != nil {
		r.end = "error: " + err.Error()
	}
	time.Sleep(c.settleLoad)
	stopLoad()
	<-load.wait
	r.ok, r.failures = load.ok, load.failures
	for _, n := range load.failures {
		r.failed += n
	}
	r.onlyVersion = versions(ctx, p.pick)
	return r
}

func line(r result) string {
	s := fmt.Sprintf("%s in %.1fs, %d ok, %d failed", r.end, r.took.Seconds(), r.ok, r.failed)
	if len(r.failures) > 0 {
		s += fmt.Sprintf(" %v", r.failures)
	}
	return s + "; then answering " + r.onlyVersion
}

func printSummary(c config, results map[string]map[string]result) {
	fmt.Println("case                          peer                            took    failed requests  then answers")
	for _, cs := range c.cases {
		for _, p := range c.peers {
			r, ok := results[p.Key][cs]
			if !ok {
				continue
			}
			what := map[string]string{"good": "good release, rolled out", "bad": "exits at start, rolled back"}[cs]
			end, _, _ := strings.Cut(r.end, " (")
			fmt.Printf("%-29s %-30s %6.1fs  %6d of %-7d %s (%s)\n", what, p.Name, r.took.Seconds(), r.failed, r.ok+r.failed, r.onlyVersion, end)
		}
	}
}
