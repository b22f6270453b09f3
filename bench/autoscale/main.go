// Command autoscale measures tend's autoscaler on the demo service at its
// defaults (x-tend.autoscale: min 1, max 6, p95 50ms, nothing tuned), in one
// run, for two services under the same load step:
//
//   - queue: each replica serves 4 requests at once, 20 ms each (the demo's
//     -limit 4 -work 20ms), so latency grows with load per replica and more
//     replicas help;
//   - fixed: every request takes 200 ms whatever the load (-delay 200ms), so
//     more replicas do not help.
//
// Each trial runs a light load (4 clients) throughout, adds 28 clients for
// the step (32 in all, closed loop), then drops back to the light load. It
// prints the time from the load step until the clients' p95 (per second) is
// under target, p95 before, during and after, the replicas over time (from the
// journal), requests failed during the scale-out and the scale-in, the time
// back to min, and for the fixed service the replica-seconds spent above min.
//
// The peer is Kubernetes' HPA, which cannot run here (no cluster): its
// documented behaviour is printed beside the figures as a reference (15 s
// sync period, 300 s scale-down stabilization, and no notion of scaling
// that does not help, so the fixed service goes to max and stays). Docker
// Compose and Swarm cannot autoscale at all.
//
// Usage (see bench/README.md):
//
//	go run ./bench/autoscale -tend /tmp/tend
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

type config struct {
	tendBin, image   string
	trials           int
	before, step     time.Duration
	after            time.Duration
	light, extra     int
	target           time.Duration
	maxReplicas, min int
}

type service struct{ name, command string }

var services = []service{
	{"queue", `"-limit", "4", "-work", "20ms"`},
	{"fixed", `"-delay", "200ms"`},
}

func main() {
	var c config
	flag.StringVar(&c.tendBin, "tend", "bin/tend", "tend binary")
	flag.StringVar(&c.image, "image", "tend-demo:dev", "demo image (examples/demo/build.sh)")
	flag.IntVar(&c.trials, "trials", 3, "trials per service")
	flag.DurationVar(&c.before, "before", 8*time.Second, "light load before the step")
	flag.DurationVar(&c.step, "step", 40*time.Second, "how long the load step lasts")
	flag.DurationVar(&c.after, "after", 60*time.Second, "light load after the step")
	flag.IntVar(&c.light, "light", 4, "clients throughout")
	flag.IntVar(&c.extra, "extra", 28, "clients added for the step")
	flag.Parse()
	c.target, c.maxReplicas, c.min = 50*time.Millisecond, 6, 1
	harness.Main(func(ctx context.Context) int { return run(ctx, c) })
}

func run(ctx context.Context, c config) int {
	if msg := harness.TendMissing(c.tendBin); msg != "" {
		fmt.Fprintln(os.Stderr, msg)
		return 2
	}
	d := harness.NewDocker()
	if _, err := harness.Preflight(ctx, d, c.image, false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("autoscale benchmark: %s; %d trials per service; load: %d clients, +%d for %s; target p95 %s, min %d, max %d, defaults otherwise\n\n",
		harness.Host(), c.trials, c.light, c.extra, c.step, c.target, c.min, c.maxReplicas)
	results := map[string][]trial{}
	for i := range c.trials {
		for _, s := range services {
			r, err := runTrial(ctx, c, s, i)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s trial %d: %v\n", s.name, i+1, err)
				return 1
			}
			r.print(c, s.name, i+1)
			results[s.name] = append(results[s.name], r)
		}
	}
	summarize(c, results)
	return 0
}

// trial is what one run of one service measured.
type trial struct {
	underAt              time.Duration // from the step until a second's p95 is under target; -1: never
	p95Before, p95During time.Duration
	p95Steady, p95After  time.Duration
	failedOut, failedIn  int
	requests             int
	backToMin            time.Duration // from the step's end until the count is min again; -1: never
	most                 int
	extraReplicaSeconds  float64 // above min, over the whole run
	timeline             []point
	noEffect             string
}

type point struct {
	at       time.Duration // since the step
	replicas int
	reason   string
}

func runTrial(ctx context.Context, c config, s service, i int) (trial, error) {
	t, err := harness.StartTend(ctx, c.tendBin)
	if err != nil {
		return trial{}, err
	}
	defer t.Stop()
	project := fmt.Sprintf("tendbench-autoscale-%s-%d", s.name, i)
	port, err := freePort()
	if err != nil {
		return trial{}, err
	}
	compose := fmt.Sprintf(`services:
  %s:
    image: %s
    command: [%s]
    ports: ["127.0.0.1:%d:8080"]
    healthcheck:
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 1s
    x-tend:
      autoscale: {min: %d, max: %d, p95: %s}
`, s.name, c.image, s.command, port, c.min, c.maxReplicas, c.target)
	defer func() {
		t.Run(context.WithoutCancel(ctx), "down", "-p", project)
		harness.SweepTend(context.WithoutCancel(ctx), harness.NewDocker(), project)
	}()
	if err := t.Up(ctx, project, "compose.yaml", compose, 60*time.Second); err != nil {
		return trial{}, err
	}
	base := func(harness.ClientKind) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }
	total := c.before + c.step + c.after
	start := time.Now()
	light := harness.Load{Kinds: []harness.ClientKind{harness.KeepAlive}, Clients: c.light, Base: base, GetPath: "/",
		Timeout: 10 * time.Second, For: total}
	extra := light
	extra.Clients, extra.For = c.extra, c.step
	done := make(chan []harness.Request)
	go func() { done <- light.Run(ctx, start) }()
	select {
	case <-time.After(c.before):
	case <-ctx.Done():
	}
	stepAt := time.Since(start)
	heavy := extra.Run(ctx, time.Now())
	all := <-done
	for i := range heavy {
		heavy[i].From += stepAt
	}
	all = append(all, heavy...)
	if ctx.Err() != nil {
		return trial{}, ctx.Err()
	}
	es, err := events(ctx, t, project)
	if err != nil {
		return trial{}, err
	}
	return measure(c, s.name, all, es, start, stepAt), nil
}

type entry struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
}

func events(ctx context.Context, t *harness.Tend, project string) ([]entry, error) {
	out, err := t.Run(ctx, "events", "--json", "-n", "0", "-p", project)
	if err != nil {
		return nil, err
	}
	var es []entry
	for _, line := range strings.Split(out, "\n") {
		var e entry
		if json.Unmarshal([]byte(line), &e) == nil && e.Action == "scale" {
			es = append(es, e)
		}
	}
	return es, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func p95(rs []harness.Request, from, to time.Duration) time.Duration {
	var lats []time.Duration
	for _, r := range rs {
		if end := r.From + r.Took; end >= from && end < to && r.Fail == "" {
			lats = append(lats, r.Took)
		}
	}
	if len(lats) == 0 {
		return 0
	}
	slices.Sort(lats)
	return lats[len(lats)*95/100]
}

func failed(rs []harness.Request, from, to time.Duration) int {
	n := 0
	for _, r := range rs {
		if end := r.From + r.Took; end >= from && end < to && r.Fail != "" {
			n++
		}
	}
	return n
}
