// Command chaos is the soak of issue 20: the demo stack (examples/stack/compose.yaml)
// under steady load through tend's proxy while `tend chaos` breaks it on a schedule.
//
// Two parts, one after the other, on one daemon and one stack:
//
//  1. `tend chaos kill --every 5s` (-kill-for, default 60s): goal 100 % of idempotent
//     requests answered;
//  2. `tend chaos all --every 5s` (-mix-for, default 105s: every kind three times):
//     kill, stop, rm, pause, sick, slow, disk in turn; goal at least 99.9 %.
//
// The load is paced, not a closed loop (the machine has 2 cores, and a closed loop of
// many clients would measure the engine starved of CPU): -clients clients per
// published service (api, shop, front, back) each send GET / every -pace, with a new
// connection every -fresh-every-th request. A request not answered within
// -request-timeout fails. Each part's availability counts every request sent from
// the part's first fault until the stack is converged again, by service.
//
// From each part's `tend chaos --json` report: recovery (ready again) per fault kind
// (p50, p99, max), the time the stack took to converge after the last fault,
// duplicates and orphans (both must be 0), and the journal's entries of the part:
// each one is claimed by a fault or listed (what tend did on its own, e.g. scaling).
//
// Usage (as root; see bench/README.md; examples/demo/build.sh builds the image):
//
//	go run ./bench/chaos -tend /tmp/tend
//	go run ./bench/chaos -tend /tmp/tend -kill-for 30s -mix-for 35s -json /tmp/chaos.json
//	go run ./bench/chaos -tend /tmp/tend -kill-for 0 -mix sick -mix-service back -mix-for 15s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

const project = "tendbench-chaos"

type config struct {
	tendBin    string
	every      time.Duration
	killFor    time.Duration
	mixFor     time.Duration
	mix        string
	mixService string
	clients    int
	pace       time.Duration
	freshEvery int
	reqTimeout time.Duration
	basePort   int
	compose    string
	image      string
	jsonOut    string
	tendLog    string
	settle     time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.tendBin, "tend", "", "tend binary (required)")
	flag.DurationVar(&c.every, "every", 5*time.Second, "a fault this often, in both parts")
	flag.DurationVar(&c.killFor, "kill-for", 60*time.Second, "part 1: kill a replica every -every for this long (0: skip)")
	flag.DurationVar(&c.mixFor, "mix-for", 105*time.Second, "part 2: every fault kind in turn, every -every, for this long (0: skip)")
	flag.StringVar(&c.mix, "mix", "all", "part 2's ACTION for tend chaos")
	flag.StringVar(&c.mixService, "mix-service", "", "part 2 strikes only this service (tend chaos --service; empty: any)")
	flag.IntVar(&c.clients, "clients", 2, "load clients per published service")
	flag.DurationVar(&c.pace, "pace", 20*time.Millisecond, "each client sends a request this often")
	flag.IntVar(&c.freshEvery, "fresh-every", 5, "every Nth request of a client opens a new connection (0: never)")
	flag.DurationVar(&c.reqTimeout, "request-timeout", 5*time.Second, "a request not answered within this fails")
	flag.IntVar(&c.basePort, "base-port", 18480, "the stack's published ports 8080-8084 are moved to base-port+0..4")
	flag.StringVar(&c.compose, "compose", "examples/stack/compose.yaml", "the demo stack")
	flag.StringVar(&c.image, "image", "tend-demo:dev", "the demo image (examples/demo/build.sh)")
	flag.StringVar(&c.jsonOut, "json", "", "also write both parts' figures and tend chaos reports to this file")
	flag.StringVar(&c.tendLog, "tend-log", "", "copy the tend daemon's log to this file at the end")
	flag.DurationVar(&c.settle, "settle", 2*time.Minute, "tend chaos --timeout: the longest wait for convergence after a part's last fault")
	flag.Parse()
	if c.tendBin == "" {
		fmt.Fprintln(os.Stderr, "chaos: -tend is required")
		os.Exit(2)
	}
	harness.Main(func(ctx context.Context) int { return run(ctx, c) })
}

// published are the demo's published services, their port in the file, and the path loaded.
var published = []struct {
	service string
	port    int
	path    string
}{{"api", 8080, "/"}, {"shop", 8081, "/"}, {"front", 8083, "/call"}, {"back", 8084, "/"}}

// stackFile is the demo's compose file with its published ports moved and its build
// context made absolute, so that it runs from the daemon's directory.
func stackFile(c config) (string, error) {
	b, err := os.ReadFile(c.compose)
	if err != nil {
		return "", err
	}
	s := string(b)
	ctxDir, err := filepath.Abs(filepath.Join(filepath.Dir(c.compose), "../demo"))
	if err != nil {
		return "", err
	}
	s = strings.ReplaceAll(s, "build: ../demo", "build: "+ctxDir)
	for i := 0; i <= 4; i++ {
		from, to := fmt.Sprint(8080+i), fmt.Sprint(c.basePort+i)
		s = strings.ReplaceAll(s, `published: "`+from+`"`, `published: "`+to+`"`)
		s = strings.ReplaceAll(s, `"127.0.0.1:`+from+`:8080"`, `"127.0.0.1:`+to+`:8080"`)
	}
	left := regexp.MustCompile(`(?m)^[^#]*(published: "808\d"|127\.0\.0\.1:808\d:)`)
	if m := left.FindString(s); m != "" {
		return "", fmt.Errorf("%s: a published port was not moved: %s", c.compose, strings.TrimSpace(m))
	}
	return s, nil
}

func run(ctx context.Context, c config) int {
	d := harness.NewDocker()
	if _, err := harness.Preflight(ctx, d, c.image, false); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	compose, err := stackFile(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	fmt.Printf("bench/chaos on %s, %s\n", harness.Host(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	cleanCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	}
	sctx, cancel := cleanCtx()
	harness.SweepLeftovers(sctx, d, "io.tend.project="+project)
	cancel()
	t, err := harness.StartTend(ctx, c.tendBin)
	if err != nil {
		fmt.Println("tend serve:", err)
		return 1
	}
	defer func() {
		tctx, cancel := cleanCtx()
		defer cancel()
		_, err := t.Run(tctx, "down", "-p", project, "--volumes")
		if c.tendLog != "" {
			_ = os.WriteFile(c.tendLog, []byte(t.Log()), 0o644)
		}
		if err = harness.FirstErr(err, t.Stop(), harness.SweepTend(tctx, d, project)); err != nil {
			fmt.Println("cleanup:", err)
		}
	}()
	t0 := time.Now()
	if err := t.Up(ctx, project, "compose.yaml", compose, 3*time.Minute); err != nil {
		fmt.Println("tend up:", err)
		return 1
	}
	fmt.Printf("tend up --wait of the demo stack: %.1f s\n", time.Since(t0).Seconds())

	var parts []partResult
	for _, p := range []struct {
		name, action, service string
		dur                   time.Duration
		goal                  float64
	}{
		{"kill every " + c.every.String(), "kill", "", c.killFor, 1.0},
		{c.mix + " every " + c.every.String() + of(c.mixService), c.mix, c.mixService, c.mixFor, 0.999},
	} {
		if p.dur <= 0 || ctx.Err() != nil {
			continue
		}
		r, err := runPart(ctx, c, t, p.name, p.action, p.service, p.dur, p.goal)
		if err != nil {
			fmt.Println(p.name+":", err)
			return 1
		}
		printPart(r)
		parts = append(parts, r)
	}
	if c.jsonOut != "" {
		b, _ := json.MarshalIndent(parts, "", "  ")
		if err := os.WriteFile(c.jsonOut, b, 0o644); err != nil {
			fmt.Println("json:", err)
		}
	}
	code := 0
	for _, p := range parts {
		if !p.Met {
			code = 1
		}
	}
	return code
}

// of names the one service a part strikes, if any.
func of(service string) string {
	if service == "" {
		return ""
	}
	return " of " + service
}
