// Command up times bringing a 20-service, 50-container stack up with docker-compose and
// with tend, in alternating rounds of one run, and prints the medians and their ratio.
//
// Usage (see bench/README.md):
//
//	go run ./bench/up -tend /tmp/tend -rounds 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

const (
	composeProject = "tendbench-up-compose"
	tendProject    = "tendbench-up-tend"
)

type config struct {
	rounds     int
	services   int
	containers int
	health     int
	image      string
	tendBin    string
	compose    string
	pause      time.Duration
}

func main() {
	var c config
	flag.IntVar(&c.rounds, "rounds", 3, "rounds; each brings the stack up and down once per peer, alternating which goes first")
	flag.IntVar(&c.services, "services", 20, "services in the stack")
	flag.IntVar(&c.containers, "containers", 50, "containers in the stack (replicas summed over services)")
	flag.IntVar(&c.health, "health", 0, "give this many services the demo's exec health check (interval 1s)")
	flag.StringVar(&c.image, "image", "tend-demo:dev", "demo image (examples/demo/build.sh)")
	flag.StringVar(&c.tendBin, "tend", "", "tend binary; the tend peer is skipped when it is missing")
	flag.StringVar(&c.compose, "compose", "docker-compose", "docker-compose binary (v1)")
	flag.DurationVar(&c.pause, "pause", 3*time.Second, "pause after each down, so the engine is idle when the next up starts")
	flag.Parse()
	harness.Main(func(ctx context.Context) int { return run(ctx, c) })
}

// peer brings the stack up and down one way.
type peer struct {
	name, label string // label selects its containers: "key=value"
	skip        string
	up, down    func(ctx context.Context) error
	ups, downs  []time.Duration
}

func run(ctx context.Context, c config) int {
	d := harness.NewDocker()
	if _, err := harness.Preflight(ctx, d, c.image, false); err != nil {
		fmt.Fprintf(os.Stderr, "up: %v\n", err)
		return 1
	}
	counts, err := replicaCounts(c.services, c.containers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "up:", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "tend-bench-up-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "up:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(composeFile(c.image, counts, c.health)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "up:", err)
		return 1
	}
	printHeader(c, counts)
	// Cleanup runs even after ^C, under its own deadline, which starts when it does.
	clean := func() {
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		sweep(cleanCtx, d)
	}
	clean()
	defer clean()

	compose := &peer{name: "docker-compose up -d", label: "com.docker.compose.project=" + composeProject}
	compose.up = func(ctx context.Context) error {
		_, err := harness.Run(ctx, c.compose, "-f", file, "-p", composeProject, "up", "-d")
		return err
	}
	compose.down = func(ctx context.Context) error {
		_, err := harness.Run(ctx, c.compose, "-f", file, "-p", composeProject, "down")
		return err
	}
	if _, err := harness.Run(ctx, c.compose, "version", "--short"); err != nil {
		compose.skip = err.Error()
	}
	tend := &peer{name: "tend up --wait", label: "io.tend.project=" + tendProject}
	if why := harness.TendMissing(c.tendBin); why != "" {
		tend.skip = why
	} else if t, err := harness.StartTend(ctx, c.tendBin); err != nil {
		tend.skip = "tend serve: " + err.Error()
	} else {
		defer func() {
			if err := t.Stop(); err != nil {
				fmt.Println("cleanup tend serve:", err)
			}
		}()
		tend.up = func(ctx context.Context) error {
			_, err := t.Run(ctx, "up", "-f", file, "-p", tendProject, "--wait")
			return err
		}
		tend.down = func(ctx context.Context) error {
			_, err := t.Run(ctx, "down", "-p", tendProject)
			return err
		}
	}
	peers := []*peer{compose, tend}
	for _, p := range peers {
		if p.skip != "" {
			fmt.Printf("%s: not measured: %s\n", p.name, p.skip)
		}
	}

	fmt.Println()
	fmt.Println("rounds (up = command start -> all containers running, and healthy where they have a check):")
	code := 0
	for i := 0; i < c.rounds && ctx.Err() == nil; i++ {
		order := peers
		if i%2 == 1 {
			order = []*peer{tend, compose}
		}
		for _, p := range order {
			if p.skip != "" || ctx.Err() != nil {
				continue
			}
			if err := round(ctx, d, c, p, i+1); err != nil {
				fmt.Printf("  %d/%d  %-22s  FAILED: %v\n", i+1, c.rounds, p.name, err)
				code = 1
			}
		}
	}
	printSummary(peers)
	if ctx.Err() != nil {
		fmt.Println("interrupted; cleaning up")
		code = 1
	}
	return code
}

// round brings the stack up with p, checks it, and takes it down again.
func round(ctx context.Context, d *harness.Docker, c config, p *peer, i int) error {
	upCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	err := p.up(upCtx)
	if err == nil {
		err = waitUp(upCtx, d, p.label, c.containers)
	}
	up := time.Since(t0)
	if err != nil {
		p.down(ctx)
		return err
	}
	t1 := time.Now()
	if err := p.down(ctx); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	down := time.Since(t1)
	if left, _ := d.Containers(ctx, true, p.label); len(left) > 0 {
		return fmt.Errorf("down left %d containers", len(left))
	}
	p.ups, p.downs = append(p.ups, up), append(p.downs, down)
	fmt.Printf("  %d/%d  %-22s  up %6s s  (down %s s)\n", i, c.rounds, p.name, harness.Secs(up), harness.Secs(down))
	select {
	case <-time.After(c.pause):
	case <-ctx.Done():
	}
	return nil
}

// waitUp returns once want containers with the label run, and those with a health
// check are healthy. docker-compose up -d returns before health checks pass; tend up
// --wait after. Checking both the same way keeps the comparison fair.
func waitUp(ctx context.Context, d *harness.Docker, label string, want int) error {
	for {
		cs, err := d.Containers(ctx, true, label)
		if err != nil {
			return err
		}
		ready := 0
		for _, c := range cs {
			// The listing's status ends in "(health: starting)" or "(unhealthy)" until a
			// container with a check is healthy; reading it saves an inspect per container.
			if c.State == "running" && !strings.Contains(c.Status, "(health: starting)") && !strings.Contains(c.Status, "(unhealthy)") {
				ready++
			}
		}
		if len(cs) > want {
			return fmt.Errorf("%d containers, want %d", len(cs), want)
		}
		if ready == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d containers ready: %w", ready, want, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sweep removes what this benchmark (or an interrupted earlier run) left.
func sweep(ctx context.Context, d *harness.Docker) {
	for _, l := range []string{"com.docker.compose.project=" + composeProject, "io.tend.project=" + tendProject} {
		cs, _ := d.Containers(ctx, true, l)
		if len(cs) > 0 {
			fmt.Printf("removing %d leftover containers (%s)\n", len(cs), l)
			args := []string{"rm", "-f"}
			for _, c := range cs {
				args = append(args, c.ID)
			}
			harness.Run(ctx, "docker", args...)
		}
		ns, _ := d.Networks(ctx, map[string][]string{"label": {l}})
		for _, n := range ns {
			fmt.Println("removing leftover network", n.Name)
			harness.Run(ctx, "docker", "network", "rm", n.ID)
		}
	}
}

func printHeader(c config, counts []int) {
	host := harness.Host()
	cv, _ := harness.Run(context.Background(), c.compose, "version", "--short")
	var cs []string
	for _, n := range counts {
		cs = append(cs, fmt.Sprint(n))
	}
	fmt.Printf("up benchmark  %s\n", time.Now().Format(time.RFC3339))
	fmt.Printf("host: %s, docker-compose %s\n", host, cv)
	health := "none"
	if c.health > 0 {
		health = fmt.Sprintf("exec check (interval 1s) on %d services", c.health)
	}
	fmt.Printf("stack: %d services / %d containers of %s (replicas %s), one user-defined network, health checks: %s\n",
		len(counts), c.containers, c.image, strings.Join(cs, ","), health)
	fmt.Printf("rounds: %d per peer, alternating which peer goes first; %s pause after each down\n", c.rounds, c.pause)
}

func printSummary(peers []*peer) {
	rows := [][]string{{"peer", "rounds", "up median s", "min s", "max s", "down median s", "note"}}
	sums := map[*peer]harness.Summary{}
	for _, p := range peers {
		if p.skip != "" {
			rows = append(rows, []string{p.name, "-", "-", "-", "-", "-", "not measured: " + harness.Tail(p.skip, 100)})
			continue
		}
		s, dn := harness.Summarize(p.ups), harness.Summarize(p.downs)
		sums[p] = s
		if s.N == 0 {
			rows = append(rows, []string{p.name, "0", "-", "-", "-", "-", "no round succeeded"})
			continue
		}
		rows = append(rows, []string{p.name, fmt.Sprint(s.N), harness.Secs(s.Median), harness.Secs(s.Min), harness.Secs(s.Max), harness.Secs(dn.Median), ""})
	}
	fmt.Println()
	fmt.Println("summary:")
	fmt.Print(harness.Table(rows))
	r, v := harness.Ratio(sums[peers[1]], sums[peers[0]], 1.0)
	fmt.Println()
	fmt.Print(harness.Table([][]string{{"ratio", "value", "goal", "verdict"}, {"tend / docker-compose (up medians)", r, "<= 1.00x", v}}))
}
