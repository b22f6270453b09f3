// Command traffic measures tend's proxy under load in one run: throughput and latency of
// wrk through tend, through nginx over the same three replicas, and straight at one
// replica, in interleaved rounds; then availability, counting the requests that fail
// while a replica is killed every two seconds, through tend and through nginx.
//
// tend runs the replicas (a compose service of three demo replicas whose published port
// tend's proxy serves, in HTTP mode since an x-tend HTTP probe checks it); nginx, started
// by the benchmark with a failover config in a temporary directory, balances over the
// same containers' addresses. The availability part also runs through tend on a second
// project as users write it: a plain published port with a compose healthcheck.
//
// Usage (as root; see bench/README.md; bench/traffic/tools.sh installs wrk and nginx):
//
//	go run ./bench/traffic -tend /tmp/tend
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

const (
	project      = "tendbench-traffic"
	plainProject = "tendbench-traffic-plain"
)

type config struct {
	rounds   int
	duration time.Duration
	warmup   time.Duration
	threads  int
	conns    int

	availFor    time.Duration
	killEvery   time.Duration
	workers     int
	reqTimeout  time.Duration
	settle      time.Duration
	replicas    int
	tendAddr    string
	plain       bool
	plainAddr   string
	nginxAddr   string
	nginxProcs  string
	image       string
	tendBin     string
	wrkBin      string
	nginxBin    string
	startupWait time.Duration
	tendLog     string
}

func main() {
	var c config
	flag.IntVar(&c.rounds, "rounds", 3, "throughput rounds; each runs wrk against tend, nginx and one replica direct, the order rotating each round (a multiple of 3 gives each target each place equally often)")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "wrk -d of each measured run")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "an unrecorded wrk run of this length against each target before the rounds (0: none)")
	flag.IntVar(&c.threads, "threads", 2, "wrk -t")
	flag.IntVar(&c.conns, "conns", 32, "wrk -c")
	flag.DurationVar(&c.availFor, "avail-duration", 10*time.Second, "length of each availability run")
	flag.DurationVar(&c.killEvery, "kill-every", 2*time.Second, "availability: docker kill one replica this often (rotating), the first half an interval in")
	flag.IntVar(&c.workers, "workers", 8, "availability: concurrent keep-alive clients sending GET /")
	flag.DurationVar(&c.reqTimeout, "request-timeout", 2*time.Second, "availability: a request not answered within this fails")
	flag.DurationVar(&c.settle, "settle", 11*time.Second, "availability: start only when every replica has run this long (tend resets a replica's restart backoff after 10 s), so both peers face the same restarts")
	flag.IntVar(&c.replicas, "replicas", 3, "replicas of the service")
	flag.StringVar(&c.tendAddr, "tend-addr", "127.0.0.1:18080", "host address tend's proxy publishes the service on")
	flag.BoolVar(&c.plain, "plain", true, "availability: also run through tend on a plain published port with a compose healthcheck (project "+plainProject+", brought up after the throughput rounds)")
	flag.StringVar(&c.plainAddr, "plain-addr", "127.0.0.1:18081", "host address of the plain-port project's published port")
	flag.StringVar(&c.nginxAddr, "nginx-addr", "127.0.0.1:18090", "address the benchmark's nginx listens on")
	flag.StringVar(&c.nginxProcs, "nginx-workers", "2", "nginx worker_processes")
	flag.StringVar(&c.image, "image", "tend-demo:dev", "demo image (examples/demo/build.sh)")
	flag.StringVar(&c.tendBin, "tend", "", "tend binary (required: tend runs the replicas)")
	flag.StringVar(&c.wrkBin, "wrk", "wrk", "wrk binary")
	flag.StringVar(&c.nginxBin, "nginx", "nginx", "nginx binary; the nginx peer is skipped when it is missing")
	flag.DurationVar(&c.startupWait, "startup-timeout", 2*time.Minute, "limit for tend up --wait and for replicas to be ready again")
	flag.StringVar(&c.tendLog, "tend-log", "", "copy the tend daemon's log to this file at the end")
	flag.Parse()
	harness.Main(func(ctx context.Context) int { return run(ctx, c) })
}

// target is one way to reach the service: its URL and whose processes proxy it.
type target struct {
	key, name string
	url       string
	skip      string
	stack     *harness.Project // whose replicas it serves
	proxyPids func() []int     // nil: no proxy (wrk talks to a replica)
	runs      []wrkResult
	avail     *availResult
}

func run(ctx context.Context, c config) (code int) {
	d := harness.NewDocker()
	if err := preflight(ctx, d, c); err != nil {
		fmt.Fprintln(os.Stderr, "traffic:", err)
		return 1
	}
	printHeader(c)
	// Cleanup runs even after ^C, under its own deadline, counted from
	// when it starts (a run with many rounds outlasts any fixed one).
	cleanCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	}
	sctx, cancel := cleanCtx()
	sweep(sctx, d)
	cancel()

	// --debug: the daemon logs each failed attempt, which availability sums up.
	t, err := harness.StartTend(ctx, c.tendBin, "--debug")
	if err != nil {
		fmt.Println("tend serve:", err)
		return 1
	}
	st := newProject(d, t, c, project, fmt.Sprintf(composeFile, c.image, c.tendAddr, c.replicas))
	plain := newProject(d, t, c, plainProject, harness.PlainCompose("bench/traffic", c.image, c.plainAddr, c.replicas))
	defer func() {
		tctx, cancel := cleanCtx()
		defer cancel()
		if err := teardown(tctx, c, t, st, plain); err != nil {
			fmt.Println("cleanup:", err)
			code = 1
		}
	}()
	if err := st.Up(ctx); err != nil {
		fmt.Println("setup:", err)
		return 1
	}
	reps, err := st.List(ctx)
	if err != nil {
		fmt.Println("setup:", err)
		return 1
	}
	fmt.Printf("replicas: %s\n", st.Line(reps))

	tendT := &target{key: "tend", name: "tend", url: "http://" + c.tendAddr + "/", stack: st, proxyPids: func() []int { return []int{t.Pid()} }}
	nginxT := &target{key: "nginx", name: "nginx", url: "http://" + c.nginxAddr + "/", stack: st}
	directT := &target{key: "direct", name: "direct (" + st.Short(reps[0]) + ")", url: "http://" + reps[0].IP + ":8080/", stack: st}
	ng, err := harness.StartNginx(ctx, harness.NginxConfig{Bin: c.nginxBin, Listen: c.nginxAddr, Workers: c.nginxProcs, Upstreams: harness.Addrs(reps, 8080)})
	if err != nil {
		nginxT.skip = err.Error()
		fmt.Println("nginx: not measured:", err)
	} else {
		defer func() {
			if err := ng.Stop(); err != nil {
				fmt.Println("cleanup nginx:", err)
				code = 1
			}
		}()
		nginxT.proxyPids = ng.Pids
	}
	targets := []*target{tendT, nginxT, directT}
	for _, tg := range targets {
		if tg.skip == "" {
			if err := getOnce(ctx, tg.url); err != nil {
				tg.skip = "not serving: " + err.Error()
				fmt.Printf("%s: not measured: %v\n", tg.name, err)
				code = 1
			}
		}
	}

	throughput(ctx, c, st, targets)
	availTargets := []*target{tendT}
	if c.plain {
		plainT := &target{key: "plain", name: "tend, plain port", url: "http://" + c.plainAddr + "/", stack: plain}
		availTargets = append(availTargets, plainT)
		if ctx.Err() == nil {
			fmt.Printf("\nplain-port project %s: a published \"%s:8080\" with a compose healthcheck, no x-tend\n", plainProject, c.plainAddr)
			if err := plain.Up(ctx); err != nil {
				plainT.skip = err.Error()
				fmt.Println("  not measured:", err)
				code = 1
			}
		}
	}
	availTargets = append(availTargets, nginxT)
	if ctx.Err() == nil {
		availability(ctx, c, ng, availTargets, reps)
	}
	printSummary(targets, availTargets)
	if ctx.Err() != nil {
		fmt.Println("interrupted; cleaning up")
		return 1
	}
	for _, tg := range targets {
		if tg.skip != "" || len(tg.runs) < c.rounds {
			code = 1
		}
	}
	return code
}

// preflight checks what the benchmark cannot run without, before it creates anything.
func preflight(ctx context.Context, d *harness.Docker, c config) error {
	if _, err := harness.Preflight(ctx, d, c.image, false); err != nil {
		return err
	}
	if why := harness.TendMissing(c.tendBin); why != "" {
		return fmt.Errorf("%s; tend runs the replicas every target serves", why)
	}
	if _, err := exec.LookPath(c.wrkBin); err != nil {
		return fmt.Errorf("wrk: %v (bench/traffic/tools.sh installs it)", err)
	}
	for _, a := range []string{c.tendAddr, c.plainAddr, c.nginxAddr} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("%s is not free: %v", a, err)
		}
		l.Close()
	}
	return nil
}

// throughput runs the warm-up, then the interleaved wrk rounds.
func throughput(ctx context.Context, c config, st *harness.Project, targets []*target) {
	fmt.Println()
	if c.warmup > 0 {
		fmt.Printf("warm-up: %s of wrk against each target (not recorded)\n", c.warmup)
		for _, tg := range targets {
			if tg.skip == "" && ctx.Err() == nil {
				if _, err := runWrk(ctx, c, tg.url, c.warmup, nil, nil); err != nil {
					fmt.Printf("  %s: warm-up failed: %v\n", tg.name, err)
				}
			}
		}
	}
	fmt.Printf("rounds (wrk -t%d -c%d -d%s --latency; cpu = CPU time / wall time, 200%% = both CPUs):\n", c.threads, c.conns, c.duration)
	for i := 0; i < c.rounds && ctx.Err() == nil; i++ {
		// The order rotates every round, so no target always follows the
		// same one (direct leaves the replicas hot; a round after it may pay).
		for k := range targets {
			tg := targets[(i+k)%len(targets)]
			if tg.skip != "" || ctx.Err() != nil {
				continue
			}
			r, err := runWrk(ctx, c, tg.url, c.duration, tg.proxyPids, st.ContainerIDs)
			if err != nil {
				fmt.Printf("  %d/%d  %-16s  FAILED: %v\n", i+1, c.rounds, tg.name, err)
				continue
			}
			tg.runs = append(tg.runs, r)
			fmt.Printf("  %d/%d  %-16s  %s\n", i+1, c.rounds, tg.name, r.line())
			if tg.key == "tend" && i == c.rounds-1 {
				printTendView(ctx, st)
			}
		}
	}
}

// printTendView prints the traffic table of `tend ps` right after a tend run: the
// proxy's own account of the last seconds (its latencies are to the replicas' response).
func printTendView(ctx context.Context, st *harness.Project) {
	out, err := st.T.Run(ctx, "ps", "-p", st.Name)
	if err != nil {
		fmt.Println("        tend ps:", err)
		return
	}
	_, traffic, ok := strings.Cut(out, "\n\n")
	if !ok {
		return
	}
	fmt.Println("        tend ps right after this run:")
	for _, l := range strings.Split(strings.TrimSpace(traffic), "\n") {
		fmt.Println("          " + l)
	}
}

func printHeader(c config) {
	bg := context.Background()
	host := harness.Host()
	wrkVer, _ := harness.Run(bg, c.wrkBin, "-v")
	wrkVer, _, _ = strings.Cut(wrkVer, " [")
	ngVer, _ := harness.Run(bg, c.nginxBin, "-v")
	ngVer = strings.TrimPrefix(ngVer, "nginx version: ")
	if ngVer == "" {
		ngVer = "nginx missing"
	}
	fmt.Printf("traffic benchmark  %s\n", time.Now().Format(time.RFC3339))
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("host: %s; %s; %s; load average %s\n", host, wrkVer, ngVer, strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Printf("stack: project %s, service web: %d replicas of %s, readiness GET /health every 1s; tend's proxy on %s\n",
		project, c.replicas, c.image, c.tendAddr)
	fmt.Printf("method: throughput: wrk -t%d -c%d -d%s --latency http://ADDR/, %d rounds, the order rotating each round\n"+
		"  (tend, nginx, direct; then nginx, direct, tend; then direct, tend, nginx; ...);\n"+
		"  nginx: worker_processes %s, upstream of the same %d container addresses with keepalive 64, HTTP/1.1 to them,\n"+
		"  max_fails=1 fail_timeout=1s, proxy_next_upstream error timeout http_502 http_503, proxy_connect_timeout 250ms,\n"+
		"  on %s; direct: wrk straight at replica 1's address. Nothing is pinned: wrk, the proxy and the\n"+
		"  replicas share both CPUs with whatever else runs on the host. CPU is read from /proc and the containers'\n"+
		"  cgroups: wrk, the proxy's processes (tend's daemon; nginx's master and workers), the 3 replicas, and\n"+
		"  rest = the host's other busy time (engine, other work, steal); proxy cpu/req = proxy CPU time / requests.\n"+
		"  availability: %s of GET / from %d keep-alive clients (%s timeout; a non-2xx answer or an error fails),\n"+
		"  docker kill of one replica every %s (rotating, the first after %s); tend restarts the killed one.\n"+
		"  Through tend, nginx, and (with -plain) tend on a plain published port with a compose healthcheck.\n",
		c.threads, c.conns, c.duration, c.rounds, c.nginxProcs, c.replicas, c.nginxAddr,
		c.availFor, c.workers, c.reqTimeout, c.killEvery, c.killEvery/2)
}
