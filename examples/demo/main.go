// Command demo is a small HTTP service with fault switches. tend's examples, integration
// tests and benchmarks run it (as image tend-demo:dev) to make a replica crash, turn
// unhealthy, slow down or print a log line on demand.
//
// Modes, chosen by flags:
//
//	demo [-addr :8080] [-name NAME]           serve HTTP (the default)
//	     [-sick-after DURATION]               /health fails once the process has run this long (env DEMO_SICK_AFTER):
//	                                          a release that turns sick on its own
//	demo -probe URL [-timeout 2s]             GET URL once; exit 0 on 2xx, 1 otherwise
//	demo -exit-after DURATION [-exit-code N]  one-shot job: wait, then exit with N
//
// Endpoints while serving:
//
//	GET  /             200 JSON {name, instance, pid, started, hostname}
//	PUT  /             the same (a method tend retries only when x-tend marks it idempotent)
//	GET  /health       200 "ok", or 503 "sick" after POST /sick
//	POST /crash        202, then the process exits with status 1
//	POST /sick         /health fails from now on
//	POST /slow?ms=N    GET / and GET /health take N ms longer (0 turns it off)
//	POST /fail[?code=N]  GET / and PUT / answer N (default 500) from now on (a replica that errors
//	                   while its /health is fine)
//	POST /burn?cores=N keep N cores busy (0 stops), with no HTTP load: for a cpu autoscale target
//	POST /heal         undo /sick, /fail, /slow and /burn
//	POST /log?line=T   print T as one line on stdout
//	GET  /ws           WebSocket echo: each text message comes back as "<hostname>: <message>"
//	POST /flood?mb=N[&line=T]   print N MiB of filler lines as fast as it can, then T
//
// The control endpoints (POST) are never slowed down, so a test can always undo a fault
// promptly. SIGTERM or SIGINT stops the server gracefully with status 0.
//
// The program uses only the standard library and starts serving with no delay: a benchmark
// measures the time from crash to serving again.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// exit ends the process after POST /crash; tests replace it.
var exit = os.Exit

// crashDelay lets the 202 response reach the client before the process exits.
const crashDelay = 10 * time.Millisecond

// maxSlow bounds POST /slow so a typo cannot park requests for hours.
const maxSlow = 10 * time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, runs the chosen mode until it ends or ctx is cancelled, and returns the
// process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	hostname, _ := os.Hostname()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("DEMO_ADDR", ":8080"), "listen address (env DEMO_ADDR)")
	name := fs.String("name", envOr("DEMO_NAME", hostname), "service name reported by GET / (env DEMO_NAME)")
	probeURL := fs.String("probe", "", "probe mode: GET this URL, exit 0 on 2xx and 1 otherwise")
	timeout := fs.Duration("timeout", 2*time.Second, "probe mode: request timeout")
	exitAfter := fs.Duration("exit-after", 0, "job mode: exit after this long without serving")
	exitCode := fs.Int("exit-code", 0, "job mode: exit status")
	greetAddr := fs.String("greet", "", "server-first mode: on this address, greet each connection, then echo its lines")
	sickAfter := fs.Duration("sick-after", durationEnv("DEMO_SICK_AFTER"), "serve mode: /health fails once the process has run this long (env DEMO_SICK_AFTER)")
	shape := loadFlags(fs) // load.go
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	jobMode := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "exit-after" || f.Name == "exit-code" {
			jobMode = true
		}
	})

	switch {
	case *probeURL != "":
		return probe(*probeURL, *timeout, stdout)
	case shape.url != "":
		return drive(ctx, shape.url, shape.clients, shape.span, stdout) // load.go
	case *greetAddr != "":
		return greet(ctx, *greetAddr, *name, stderr)
	case jobMode:
		if *exitCode < 0 || *exitCode > 255 {
			fmt.Fprintf(stderr, "demo: -exit-code %d: want 0..255\n", *exitCode)
			return 2
		}
		return job(ctx, *name, *exitAfter, *exitCode, stdout)
	default:
		srv := newServer(*name, hostname, stdout)
		srv.shape = shape
		srv.sickAfter = *sickAfter
		return serve(ctx, *addr, srv, stdout, stderr)
	}
}

func durationEnv(key string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(key))
	return d
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// probe is the exec health check of the scratch image, which has no shell or curl.
func probe(url string, timeout time.Duration, out io.Writer) int {
	client := &http.Client{
		Timeout: timeout,
		// A health check talks to its own container: never through a proxy, never reused.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(out, "probe %s: %v\n", url, err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(out, "probe %s: %s\n", url, resp.Status)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 1
	}
	return 0
}

// job stands in for a one-shot step such as a migration. Stopped early, it exits 143 (as if
// killed by SIGTERM), so nobody mistakes an interrupted job for a completed one.
func job(ctx context.Context, name string, after time.Duration, code int, out io.Writer) int {
	fmt.Fprintf(out, "demo %s job: exiting with status %d after %s\n", name, code, after)
	t := time.NewTimer(after)
	defer t.Stop()
	select {
	case <-t.C:
		fmt.Fprintf(out, "demo %s job: done\n", name)
		return code
	case <-ctx.Done():
		fmt.Fprintf(out, "demo %s job: interrupted\n", name)
		return 143
	}
}

// serve listens first, so the startup line is only printed once connections are accepted.
func serve(ctx context.Context, addr string, s *server, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "demo: listen %s: %v\n", addr, err)
		return 1
	}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	if strings.HasSuffix(addr, ":0") {
		addr = ln.Addr().String() // say which port was picked
	}
	s.printf("demo %s listening on %s instance=%s", s.name, addr, s.instance)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "demo: serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "demo: serve: %v\n", err)
	}
	s.printf("demo %s stopped", s.name)
	return 0
}

// server holds the identity of this process and its fault switches.
type server struct {
	name     string
	instance string // random, made at start: tells a restarted process from the old one
	hostname string
	pid      int
	started  time.Time

	sick      atomic.Bool
	sickAfter time.Duration // /health fails once the process has run this long; 0: never
	fail      atomic.Int32  // the status GET / answers with; 0: none
	slow      atomic.Int64  // extra latency in nanoseconds
	shape     *loadShape    // what GET / costs (load.go); nil: nothing
	burn      burner        // POST /burn's busy cores (burn.go)

	outMu sync.Mutex
	out   io.Writer
}

func newServer(name, hostname string, out io.Writer) *server {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return &server{
		name:     name,
		instance: hex.EncodeToString(b[:]),
		hostname: hostname,
		pid:      os.Getpid(),
		started:  time.Now(),
		out:      out,
	}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	// Patterns with a method make the mux answer 405 with an Allow header for other methods.
	mux.Handle("GET /{$}", s.shape.wrap(s.slowed(s.handleIndex)))
	mux.Handle("PUT /{$}", s.slowed(s.handleIndex))
	mux.Handle("GET /health", s.slowed(s.handleHealth))
	mux.HandleFunc("POST /crash", s.handleCrash)
	mux.HandleFunc("POST /sick", s.handleSick)
	mux.HandleFunc("POST /fail", s.handleFail)
	mux.HandleFunc("POST /slow", s.handleSlow)
	mux.HandleFunc("POST /heal", s.handleHeal)
	mux.HandleFunc("POST /burn", s.handleBurn)
	mux.HandleFunc("POST /log", s.handleLog)
	mux.HandleFunc("POST /flood", s.handleFlood)
	mux.HandleFunc("GET /ws", s.handleWS)
	mux.HandleFunc("GET /call", s.handleCall) // front.go
	return mux
}

// printf writes one line to stdout; the lock keeps lines from interleaving.
func (s *server) printf(format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.out, format+"\n", args...)
}

// slowed adds the current extra latency before h runs, or gives up when the client goes.
func (s *server) slowed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(s.slow.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		h(w, r)
	})
}

type info struct {
	Name     string `json:"name"`
	Instance string `json:"instance"`
	PID      int    `json:"pid"`
	Started  string `json:"started"`
	Hostname string `json:"hostname"`
}

func (s *server) handleIndex(w http.ResponseWriter, r *http.Request) {
	if code := s.fail.Load(); code != 0 {
		text(w, int(code), "failing")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info{
		Name:     s.name,
		Instance: s.instance,
		PID:      s.pid,
		Started:  s.started.Format(time.RFC3339Nano),
		Hostname: s.hostname,
	})
}

func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.sick.Load() || (s.sickAfter > 0 && time.Since(s.started) >= s.sickAfter) {
		text(w, http.StatusServiceUnavailable, "sick")
		return
	}
	text(w, http.StatusOK, "ok")
}

func (s *server) handleCrash(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	text(w, http.StatusAccepted, "crashing")
	_ = http.NewResponseController(w).Flush()
	s.printf("demo %s crashing on request", s.name)
	time.AfterFunc(crashDelay, func() { exit(1) })
}

func (s *server) handleSick(w http.ResponseWriter, r *http.Request) {
	s.sick.Store(true)
	text(w, http.StatusOK, "sick")
}

func (s *server) handleFail(w http.ResponseWriter, r *http.Request) {
	code := http.StatusInternalServerError
	if v := r.URL.Query().Get("code"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 400 || n > 599 {
			text(w, http.StatusBadRequest, "code: want an error status 400..599")
			return
		}
		code = n
	}
	s.fail.Store(int32(code))
	text(w, http.StatusOK, "failing")
}

func (s *server) handleSlow(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.ParseInt(r.URL.Query().Get("ms"), 10, 64)
	if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > maxSlow {
		text(w, http.StatusBadRequest, fmt.Sprintf("ms: want milliseconds in 0..%d", maxSlow.Milliseconds()))
		return
	}
	s.slow.Store(int64(time.Duration(ms) * time.Millisecond))
	text(w, http.StatusOK, fmt.Sprintf("slow %dms", ms))
}

func (s *server) handleHeal(w http.ResponseWriter, r *http.Request) {
	s.sick.Store(false)
	s.fail.Store(0)
	s.slow.Store(0)
	s.burn.set(0)
	text(w, http.StatusOK, "ok")
}

func (s *server) handleLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("line") {
		text(w, http.StatusBadRequest, "line: missing")
		return
	}
	// One request, one line: a log watcher must see exactly what the test asked for.
	line := strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(q.Get("line"))
	s.printf("%s", line)
	text(w, http.StatusOK, "logged")
}

// maxFlood bounds POST /flood: enough to test a log watcher, not to fill a disk.
const maxFlood = 1024

// handleFlood writes filler lines of 100 bytes each, in large writes, so a
// log watcher can be tested under megabytes per second.
func (s *server) handleFlood(w http.ResponseWriter, r *http.Request) {
	mb, err := strconv.Atoi(r.URL.Query().Get("mb"))
	if err != nil || mb < 1 || mb > maxFlood {
		text(w, http.StatusBadRequest, fmt.Sprintf("mb: want 1..%d", maxFlood))
		return
	}
	const lineLen = 100
	block := make([]byte, 0, 64*1024)
	for n := 0; len(block)+lineLen <= cap(block); n++ {
		l := fmt.Sprintf("INFO filler line %08d ", n)
		block = append(block, l+strings.Repeat("x", lineLen-len(l)-1)+"\n"...)
	}
	s.outMu.Lock()
	for written := 0; written < mb<<20; written += len(block) {
		if _, err := s.out.Write(block); err != nil {
			break
		}
	}
	s.outMu.Unlock()
	if q := r.URL.Query(); q.Has("line") {
		s.printf("%s", strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(q.Get("line")))
	}
	text(w, http.StatusOK, "flooded")
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	// A known length makes the response complete once flushed, even if the process exits.
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}
