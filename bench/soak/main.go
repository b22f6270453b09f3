package main

import (
	"context"
	"debug/buildinfo"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

const project = "tendbench-soak"

type config struct {
	rounds      int
	killEvery   time.Duration
	fastRounds  int
	fastEvery   time.Duration
	duration    time.Duration
	gap         time.Duration
	settle      time.Duration
	fastSettle  time.Duration
	clients     int
	kinds       []harness.ClientKind
	postEvery   int
	reqTimeout  time.Duration
	seed        uint64
	peers       []harness.Peer
	replicas    int
	tendAddr    string
	nginxAddr   string
	nginxH2C    string
	nginxProcs  string
	image       string
	tendBin     string
	nginxBin    string
	startupWait time.Duration
	jsonOut     string
	tendCommit  string
	tendLog     string
}

var allPeers = []harness.Peer{{Key: "tend", Name: "tend"}, {Key: "nginx", Name: "nginx"}}

func main() {
	var c config
	var kinds, peers string
	flag.IntVar(&c.rounds, "rounds", 20, "part one: rounds with a kill every -kill-every; each round runs once through each peer")
	flag.DurationVar(&c.killEvery, "kill-every", 2*time.Second, "part one: kill a random running replica this often, the first half an interval in")
	flag.IntVar(&c.fastRounds, "fast-rounds", 1, "part two: rounds with a kill every -fast-kill-every (0: no part two)")
	flag.DurationVar(&c.fastEvery, "fast-kill-every", 500*time.Millisecond, "part two: kill a random running replica this often")
	flag.DurationVar(&c.duration, "duration", 12*time.Second, "length of each run (load and kills)")
	flag.DurationVar(&c.gap, "gap", 3*time.Second, "pause between the end of a run and the start of the next (after the replicas are ready again)")
	flag.DurationVar(&c.settle, "settle", 0, "start a run only when every replica has run this long (11s: past tend's restart streak; 0: once ready)")
	flag.DurationVar(&c.fastSettle, "fast-settle", 11*time.Second, "part two: start a run only when every replica has run this long (tend's restart streak resets after 10s of running), so that neither peer inherits the backoff the other's kills left")
	flag.IntVar(&c.clients, "clients", 4, "concurrent clients of each kind")
	flag.StringVar(&kinds, "kinds", "keepalive,fresh,h2c", "client kinds: keepalive (HTTP/1.1, one connection reused), fresh (a new connection per request), h2c (HTTP/2 with prior knowledge)")
	flag.IntVar(&c.postEvery, "post-every", 10, "every Nth request of each client is a POST (POST /heal, harmless on the demo); 0: GETs only")
	flag.DurationVar(&c.reqTimeout, "request-timeout", 2*time.Second, "a request not answered within this fails")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the victims' choice (round r uses seed and r)")
	flag.StringVar(&peers, "peers", "tend,nginx", "peers to run: tend, nginx")
	flag.IntVar(&c.replicas, "replicas", 3, "replicas of the service")
	flag.StringVar(&c.tendAddr, "tend-addr", "127.0.0.1:18301", "the published port (\"HOST:PORT:8080\" in the compose file; \":PORT\" writes \"PORT:8080\", every interface)")
	flag.StringVar(&c.nginxAddr, "nginx-addr", "127.0.0.1:18311", "nginx's HTTP/1.x listener")
	flag.StringVar(&c.nginxH2C, "nginx-h2c-addr", "127.0.0.1:18312", "nginx's h2c listener (nginx 1.22 serves h2c prior knowledge on a listener of its own)")
	flag.StringVar(&c.nginxProcs, "nginx-workers", "2", "nginx worker_processes")
	flag.StringVar(&c.image, "image", "tend-demo:dev", "demo image (examples/demo/build.sh)")
	flag.StringVar(&c.tendBin, "tend", "", "tend binary (required: tend runs the replicas)")
	flag.StringVar(&c.nginxBin, "nginx", "nginx", "nginx binary")
	flag.DurationVar(&c.startupWait, "startup-timeout", 2*time.Minute, "limit for tend up --wait and for replicas to be ready again")
	flag.StringVar(&c.jsonOut, "json", "", "also write every run and the totals to this file as JSON")
	flag.StringVar(&c.tendCommit, "tend-commit", "", "the commit the tend binary was built from, for the record (default: read from the binary's build information)")
	flag.StringVar(&c.tendLog, "tend-log", "", "copy the tend daemon's log to this file at the end")
	flag.Parse()
	var err error
	if c.kinds, err = harness.ParseClientKinds(kinds); err == nil {
		c.peers, err = harness.PickPeers(allPeers, peers)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	harness.Main(func(ctx context.Context) int { return run(ctx, c) })
}

// part is one kill schedule, run for some rounds.
type part struct {
	key    int    // 1, 2: with the round, it seeds the victims' choice
	name   string // "kill every 2s"
	every  time.Duration
	rounds int
}

func (c config) parts() []part {
	ps := []part{{1, fmt.Sprintf("kill every %s", c.killEvery), c.killEvery, c.rounds}}
	if c.fastRounds > 0 {
		ps = append(ps, part{2, fmt.Sprintf("kill every %s", c.fastEvery), c.fastEvery, c.fastRounds})
	}
	return ps
}

func run(ctx context.Context, c config) (code int) {
	d := harness.NewDocker()
	if err := preflight(ctx, d, c); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 1
	}
	printHeader(c)
	// Cleanup runs even after ^C, under its own deadline, counted from when it starts.
	cleanCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	}
	sctx, cancel := cleanCtx()
	harness.SweepLeftovers(sctx, d, "io.tend.project="+project)
	cancel()

	// --debug: the daemon logs each failed attempt, which a run's notes sum up.
	t, err := harness.StartTend(ctx, c.tendBin, "--debug")
	if err != nil {
		fmt.Println("tend serve:", err)
		return 1
	}
	p := &harness.Project{D: d, T: t, Name: project, Replicas: c.replicas, Limit: c.startupWait,
		Compose: harness.PlainCompose("bench/soak", c.image, c.tendAddr, c.replicas)}
	defer func() {
		tctx, cancel := cleanCtx()
		defer cancel()
		err := p.Down(tctx)
		if c.tendLog != "" {
			if err := os.WriteFile(c.tendLog, []byte(t.Log()), 0o644); err != nil {
				fmt.Println("tend's log:", err)
			}
		}
		if err = harness.FirstErr(err, t.Stop()); err != nil {
			fmt.Println("cleanup:", err)
			code = 1
		}
	}()
	if err := p.Up(ctx); err != nil {
		fmt.Println("setup:", err)
		return 1
	}
	reps, err := p.List(ctx)
	if err != nil {
		fmt.Println("setup:", err)
		return 1
	}
	fmt.Printf("replicas: %s\n", p.Line(reps))

	var peers []*peer
	for _, pr := range c.peers {
		pe := &peer{Peer: pr}
		switch pr.Key {
		case "tend":
			pe.base = func(harness.ClientKind) string { return "http://" + hostPort(c.tendAddr) }
		case "nginx":
			ng, err := harness.StartNginx(ctx, harness.NginxConfig{Bin: c.nginxBin, Listen: c.nginxAddr, ListenH2C: c.nginxH2C,
				Workers: c.nginxProcs, Upstreams: harness.Addrs(reps, 8080)})
			if err != nil {
				pe.skip = err.Error()
				fmt.Println("nginx: not measured:", err)
				code = 1
				break
			}
			defer func() {
				if err := ng.Stop(); err != nil {
					fmt.Println("cleanup nginx:", err)
					code = 1
				}
			}()
			pe.ng = ng
			pe.base = func(k harness.ClientKind) string {
				if k == harness.H2C {
					return "http://" + c.nginxH2C
				}
				return "http://" + c.nginxAddr
			}
		}
		peers = append(peers, pe)
	}

	res := &results{Config: c.summary()}
	n := 0 // runs so far, for the alternating order
	var lastEnd time.Time
	for _, pt := range c.parts() {
		if ctx.Err() != nil {
			break
		}
		fmt.Printf("\n== %s for %s, %d round(s); %d clients of each kind (%s), %s\n",
			pt.name, c.duration, pt.rounds, c.clients, kindsLine(c.kinds), postsLine(c.postEvery))
		for r := 1; r <= pt.rounds && ctx.Err() == nil; r++ {
			var runs []runResult
			for k := range peers {
				pe := peers[(n+k)%len(peers)] // alternate who goes first
				if pe.skip != "" || ctx.Err() != nil {
					continue
				}
				rr, end := oneRun(ctx, c, p, pe, pt, r, lastEnd)
				lastEnd = end
				runs = append(runs, rr)
				res.add(rr)
			}
			n++
			printRound(pt, r, runs)
		}
	}
	res.finish()
	printTotals(res)
	if c.jsonOut != "" {
		if err := res.write(c.jsonOut); err != nil {
			fmt.Println("json:", err)
			code = 1
		} else {
			fmt.Println("results written to", c.jsonOut)
		}
	}
	if ctx.Err() != nil {
		fmt.Println("interrupted; cleaning up")
		return 1
	}
	return code
}

// hostPort is the address clients reach the published port on.
func hostPort(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

// preflight checks what the benchmark cannot run without, before it creates anything.
func preflight(ctx context.Context, d *harness.Docker, c config) error {
	if _, err := harness.Preflight(ctx, d, c.image, false); err != nil {
		return err
	}
	if why := harness.TendMissing(c.tendBin); why != "" {
		return fmt.Errorf("%s; tend runs the replicas both peers serve", why)
	}
	if c.duration <= 0 || c.killEvery <= 0 || c.fastEvery <= 0 || c.clients <= 0 {
		return fmt.Errorf("-duration, -kill-every, -fast-kill-every and -clients must be positive")
	}
	for _, a := range []string{c.tendAddr, c.nginxAddr, c.nginxH2C} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("%s is not free: %v", a, err)
		}
		l.Close()
	}
	return nil
}

// build names the tend binary's commit: -tend-commit, else its build information.
func (c config) build() string {
	if c.tendCommit != "" {
		return "commit " + c.tendCommit
	}
	info, err := buildinfo.ReadFile(c.tendBin)
	if err != nil {
		return "unknown build"
	}
	rev, dirty := "", ""
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 7:
			rev = s.Value[:7]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = " (modified)"
		}
	}
	if rev == "" {
		return "commit unknown (built without VCS stamping)"
	}
	return "commit " + rev + dirty
}

func printHeader(c config) {
	host := harness.Host()
	ngVer, _ := harness.Run(context.Background(), c.nginxBin, "-v")
	ngVer = strings.TrimPrefix(ngVer, "nginx version: ")
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("soak benchmark  %s\n", time.Now().Format(time.RFC3339))
	fmt.Printf("host: %s; %s; load average %s\n", host, ngVer, strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Printf("tend: %s, %s\n", c.tendBin, c.build())
	fmt.Printf("stack: project %s, service web: %d replicas of %s published as \"%s:8080\" (plain: no app_protocol, no x-tend),\n"+
		"  compose healthcheck [\"CMD\", \"/demo\", \"-probe\", \"http://127.0.0.1:8080/health\"] every 1s\n",
		project, c.replicas, c.image, strings.TrimPrefix(c.tendAddr, ":"))
	fmt.Printf("nginx: worker_processes %s on %s (h2c on %s), upstream of the replicas' container addresses with keepalive 64,\n"+
		"  max_fails=1 fail_timeout=1s, proxy_next_upstream error timeout http_502 http_503, proxy_connect_timeout 250ms\n",
		c.nginxProcs, c.nginxAddr, c.nginxH2C)
	fmt.Printf("method: in each round one run through each peer, the order alternating; each run from ready replicas\n"+
		"  (in part two also run for %s), %s after the last; %d clients of each kind send GET /\n"+
		"  (%s: POST /heal) in a closed loop, %s timeout; a random running replica (seed %d) is SIGKILLed\n"+
		"  through the Engine API at fixed times; tend restarts it.\n"+
		"  A failed POST in flight at a kill may have reached the replica that died (no proxy may resend it): counted apart.\n"+
		"  time failing %% = the clients' time from a failed request to the end of the next successful one, of all their time.\n",
		c.fastSettle, c.gap, c.clients, postsLine(c.postEvery), c.reqTimeout, c.seed)
}

func kindsLine(ks []harness.ClientKind) string {
	var s []string
	for _, k := range ks {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// postsLine says which requests are POSTs: "one request in 10 a POST".
func postsLine(n int) string {
	switch {
	case n <= 0:
		return "GETs only"
	case n == 1:
		return "every request a POST"
	}
	return fmt.Sprintf("one request in %d a POST", n)
}
