// Command crash SIGKILLs tend's daemon at a random moment of `tend up`, `tend scale`,
// a replacement (`tend up` of a changed file) and `tend down` of one small stack, restarts
// it on the same data directory, and checks after each restart that the stack converges
// to what was asked, with no duplicate replica, no orphan and a journal that reads and
// numbers on. It prints, per operation, the iterations, the convergence time after the
// restart (p50, p99, max) and every failure, and exits 1 when there was one.
//
// Usage (see bench/README.md):
//
//	go run ./bench/crash -tend /tmp/tend -iterations 200
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// project is the stack's name (-project).
var project string

type config struct {
	project    string
	iterations int
	maxDelay   time.Duration
	converge   time.Duration
	image      string
	tendBin    string
	seed       uint64
}

func main() {
	var c config
	flag.StringVar(&c.project, "project", "tendbench-crash", "the stack's project name")
	flag.IntVar(&c.iterations, "iterations", 200, "kills of the daemon, one per operation")
	flag.DurationVar(&c.maxDelay, "max-delay", 1500*time.Millisecond, "the kill comes at a uniformly random delay up to this after the command starts")
	flag.DurationVar(&c.converge, "converge", 60*time.Second, "the longest wait for the stack to converge after a restart")
	flag.StringVar(&c.image, "image", "tend-demo:dev", "demo image (examples/demo/build.sh)")
	flag.StringVar(&c.tendBin, "tend", "", "tend binary")
	flag.Uint64Var(&c.seed, "seed", 0, "random seed (0: from the clock; printed, so a run can be repeated)")
	flag.Parse()
	harness.Main(func(ctx context.Context) int { return run(ctx, c) })
}

// desired is what the stack should be once tend has converged.
type desired struct {
	up      bool
	gen     int // the file's generation: a new one replaces every replica
	webN    int
	workerN int
}

// op is one command the daemon is killed during.
type op struct {
	kind string // up, scale, replace, down
	args []string
	want desired
}

func run(ctx context.Context, c config) int {
	if why := harness.TendMissing(c.tendBin); why != "" {
		fmt.Fprintln(os.Stderr, "crash:", why)
		return 2
	}
	d := harness.NewDocker()
	if _, err := harness.Preflight(ctx, d, c.image, false); err != nil {
		fmt.Fprintf(os.Stderr, "crash: %v\n", err)
		return 1
	}
	project = c.project
	label := "io.tend.project=" + project
	harness.SweepLeftovers(ctx, d, label)
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(c.seed, 20))
	fmt.Printf("crash: %d iterations, kill at 0-%s after the command starts, seed %d; %s\n",
		c.iterations, c.maxDelay, c.seed, harness.Host())

	t, err := harness.StartTend(ctx, c.tendBin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash:", err)
		return 1
	}
	s := &stack{c: c, d: d, t: t, rng: rng, stats: map[string]*opStats{}}
	defer func() {
		cleanup, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = t.Run(cleanup, "down", "-p", project)
		if err := harness.FirstErr(t.Stop(), harness.SweepTend(cleanup, d, project)); err != nil {
			fmt.Println("crash: clean-up:", err)
		}
	}()
	start := time.Now()
	for i := 1; i <= c.iterations && ctx.Err() == nil; i++ {
		o := s.next()
		if err := s.iterate(ctx, i, o); err != nil {
			if ctx.Err() != nil {
				break
			}
			fmt.Printf("iteration %d (%s): %v\n", i, o.kind, err)
			s.stats[o.kind].failures = append(s.stats[o.kind].failures, fmt.Sprintf("%d: %v", i, err))
			if s.t == nil { // the daemon cannot be started again: nothing more to learn
				break
			}
		}
	}
	return s.report(time.Since(start))
}

// stack is the benchmark's state between iterations.
type stack struct {
	c     config
	d     *harness.Docker
	t     *harness.Tend
	rng   *rand.Rand
	now   desired
	stats map[string]*opStats
	seq   uint64 // the newest journal entry seen
}

// next picks the next operation from the stack's state.
func (s *stack) next() op {
	cur := s.now
	if !cur.up {
		want := desired{up: true, gen: cur.gen + 1, webN: 2, workerN: 1}
		return op{kind: "up", want: want}
	}
	switch s.rng.IntN(3) {
	case 0:
		want := cur
		for want.webN == cur.webN {
			want.webN = 1 + s.rng.IntN(3)
		}
		return op{kind: "scale", args: []string{"scale", "-p", project, fmt.Sprintf("web=%d", want.webN)}, want: want}
	case 1:
		want := cur
		want.gen++
		return op{kind: "replace", want: want}
	}
	return op{kind: "down", args: []string{"down", "-p", project}, want: desired{gen: cur.gen}}
}

// iterate runs o, kills the daemon at a random moment of it, restarts it,
// runs o again if the kill failed it (what its user would do), and waits
// for the stack to converge.
func (s *stack) iterate(ctx context.Context, i int, o op) error {
	if s.stats[o.kind] == nil {
		s.stats[o.kind] = &opStats{}
	}
	st := s.stats[o.kind]
	st.n++
	args := o.args
	if o.kind == "up" || o.kind == "replace" {
		file, err := s.writeFile(o.want)
		if err != nil {
			return err
		}
		args = []string{"up", "-f", file, "-p", project}
	}
	cmd := exec.CommandContext(ctx, s.t.Bin, args...)
	cmd.Env = append(os.Environ(), "TEND_SOCKET="+s.t.Socket)
	if err := cmd.Start(); err != nil {
		return err
	}
	delay := time.Duration(s.rng.Int64N(int64(s.c.maxDelay) + 1))
	time.Sleep(delay)
	s.t.Kill()
	cmdErr := cmd.Wait()
	restarted := time.Now()
	if err := s.t.Restart(ctx); err != nil {
		s.t = nil
		return fmt.Errorf("restart after a kill %s into the command: %w", delay.Round(time.Millisecond), err)
	}
	if cmdErr != nil {
		st.retried++
		out, err := s.t.Run(ctx, args...)
		if err != nil && !(o.kind == "down" && strings.Contains(out, "not found")) { // a down done before the kill
			return fmt.Errorf("%s again after the restart: %w", o.kind, err)
		}
	}
	s.now = o.want
	if err := s.converge(ctx, o.want); err != nil {
		return fmt.Errorf("killed %s into it: %w", delay.Round(time.Millisecond), err)
	}
	took := time.Since(restarted)
	st.converge = append(st.converge, took)
	fmt.Printf("%3d %-8s killed %5dms into it, cli %-6s converged %6.2fs after the restart\n",
		i, o.kind, delay.Milliseconds(), map[bool]string{true: "failed", false: "ok"}[cmdErr != nil], took.Seconds())
	return s.checkJournal(ctx)
}

// writeFile writes the stack's compose file for want and returns its path.
// The generation is in an environment variable and a label, so a new one
// changes every replica's spec.
func (s *stack) writeFile(want desired) (string, error) {
	file := filepath.Join(s.t.Dir, "compose.yaml")
	text := fmt.Sprintf(`services:
  web:
    image: %[1]s
    environment: {GEN: "%[2]d"}
    labels: {io.tend.bench.gen: "%[2]d"}
    deploy: {replicas: 2}
    stop_grace_period: 1s
  worker:
    image: %[1]s
    environment: {GEN: "%[2]d"}
    labels: {io.tend.bench.gen: "%[2]d"}
    stop_grace_period: 1s
`, s.c.image, want.gen)
	return file, os.WriteFile(file, []byte(text), 0o644)
}

// opStats is what one kind of operation measured.
type opStats struct {
	n, retried int
	converge   []time.Duration
	failures   []string
}

func (s *stack) report(took time.Duration) int {
	fmt.Printf("\ncrash: %s in all\n", took.Round(time.Second))
	fmt.Printf("%-8s %6s %8s %9s %9s %9s %9s\n", "op", "kills", "retried", "failed", "p50", "p99", "max")
	failed := 0
	for _, kind := range []string{"up", "scale", "replace", "down"} {
		st := s.stats[kind]
		if st == nil {
			continue
		}
		failed += len(st.failures)
		l := harness.LatenciesOf(st.converge)
		fmt.Printf("%-8s %6d %8d %9d %8.2fs %8.2fs %8.2fs\n", kind, st.n, st.retried, len(st.failures), l.P50.Seconds(), l.P99.Seconds(), l.Max.Seconds())
	}
	fmt.Println("(kills: iterations; retried: the command failed at the kill and was run again after the restart;")
	fmt.Println(" p50/p99/max: from the restart to the stack converged, with no duplicate and no orphan)")
	for _, kind := range []string{"up", "scale", "replace", "down"} {
		if st := s.stats[kind]; st != nil {
			for _, f := range st.failures {
				fmt.Printf("failed %s %s\n", kind, f)
			}
		}
	}
	fmt.Printf("journal: %d entries, numbered densely and read after every restart\n", s.seq)
	if failed > 0 {
		return 1
	}
	return 0
}
