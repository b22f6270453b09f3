package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/testwait"
)

// harness runs a Manager for one test and checks, at the end, that Run
// returned and no goroutine was left behind.
type harness struct {
	t      *testing.T
	m      *Manager
	client *http.Client
	clk    *clock.Fake // the Manager's clock, when the test drives it
	stop   func()      // ends Run and waits for it; once

	mu     sync.Mutex
	events []Event
}

func init() {
	// fasthttp starts one goroutine for the whole process, to keep the
	// Date header current; it is started here so no test counts it.
	var h fasthttp.ResponseHeader
	h.AppendBytes(nil)
	// So does tend's event-loop engine (loop.go), shared by every test.
	if _, err := theLoops(); err != nil {
		panic(err)
	}
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	before := goruntime.NumGoroutine()
	t.Cleanup(func() { testwait.Goroutines(t, before) })
	h := &harness{t: t}
	if cfg.Log == nil && testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.OnEvent = func(ev Event) {
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}
	if f, ok := cfg.Clock.(*clock.Fake); ok {
		h.clk = f
	}
	h.m = NewManager(cfg)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	h.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Run(ctx) }()
	h.stop = sync.OnceFunc(func() {
		tr.CloseIdleConnections()
		cancel()
		if h.clk != nil {
			// Stopping waits on the clock (the grace, polls): let it run.
			stopped := make(chan struct{})
			defer close(stopped)
			go func() {
				for {
					select {
					case <-stopped:
						return
					case <-time.After(time.Millisecond):
						h.clk.Advance(10 * time.Millisecond)
					}
				}
			}()
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(testwait.For):
			t.Errorf("Run did not return %s after its context ended", testwait.For)
		}
	})
	t.Cleanup(h.stop)
	return h
}

// newFakeHarness is a harness whose Manager runs on a fake clock (h.clk),
// which moves only when the test advances it. It starts at the real time:
// the few socket deadlines a moment ahead set from it (the TCP path's) are
// then never early.
func newFakeHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	cfg.Clock = clock.NewFake(time.Now())
	return newHarness(t, cfg)
}

// held waits until n requests (or connections) of route r wait for a
// replica, or a pause, on the Manager's clock.
func (h *harness) held(r Route, n int) {
	h.t.Helper()
	p := h.pool(r)
	testwait.Eventually(h.t, fmt.Sprintf("%d requests to wait for a replica", n), func() bool { return p.waiting() >= n })
}

// pool returns the pool of route r.
func (h *harness) pool(r Route) *pool {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	return h.m.routes[listenAddr(r.Listen)].pool
}

// eventsOf returns the events of kind so far.
func (h *harness) eventsOf(kind string) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Event
	for _, ev := range h.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// sync calls Sync and fails the test on an error.
func (h *harness) sync(routes ...Route) {
	h.t.Helper()
	if err := h.m.Sync(routes); err != nil {
		h.t.Fatalf("Sync: %v", err)
	}
}

// get fetches url and returns the status and body; a transport error is
// status 0 with the error text.
func (h *harness) get(url string) (int, string) {
	return h.do(http.MethodGet, url, "")
}

func (h *harness) do(method, url, body string) (int, string) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	res, err := h.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err.Error()
	}
	return res.StatusCode, string(b)
}

// send does req, failing the test if it gets no answer, and returns the
// answer with its body.
func (h *harness) send(req *http.Request) (*http.Response, []byte) {
	h.t.Helper()
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, body
}

// freePort returns a loopback address nothing listens on (for now).
func freePort(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// deadAddr returns a loopback address that refuses connections.
func deadAddr(t testing.TB) netip.AddrPort { return freePort(t) }

// url is the proxy address of r.
func url(r Route) string { return "http://" + r.Listen.String() }

// backendServer starts an HTTP backend and describes it as replica name.
func backendServer(t testing.TB, name string, h http.HandlerFunc) Backend {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return Backend{ID: "id-" + name, Replica: name, Addr: netip.MustParseAddrPort(srv.Listener.Addr().String()), Ready: true}
}

// named answers 200 with the replica's name and counts its requests.
func named(name string, hits *counter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hits.inc()
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	}
}

// failing answers code and counts its requests.
func failing(code int, hits *counter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hits.inc()
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(code)
	}
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) inc() {
	if c != nil {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
}

func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// routeOf is a route of project p on a free loopback port.
func routeOf(t testing.TB, service string, mode Mode, bs ...Backend) Route {
	return Route{Project: "p", Service: service, Listen: freePort(t), Mode: mode, Backends: bs}
}

// testPool is a pool outside any Manager, for the balancing and ejection
// rules.
func testPool(t testing.TB, policy ejectPolicy, onEvent func(Event), bs ...Backend) *pool {
	t.Helper()
	m := newMetrics(prometheus.NewRegistry(), slog.New(slog.DiscardHandler),
		newInflightCollector(func(func(string, string, string, int64)) {}))
	svc := newService("p", "web", m, testClk)
	p := newPool("p", "web", HTTP, svc, policy, onEvent, slog.New(slog.DiscardHandler), -1, globalRand{})
	p.update(bs, func(string) bool { return false })
	return p
}

// testClk is the real clock of the pools outside any Manager (testPool);
// testNow is now on it.
var testClk = newClk(clock.Real{})

func testNow() int64 { return testClk.mono() }

func mustAddrPort(a net.Addr) netip.AddrPort { return netip.MustParseAddrPort(a.String()) }

func testingProcs() int { return goruntime.GOMAXPROCS(0) }

// rawServer accepts TCP connections on 127.0.0.1 until the test ends and
// hands each to handle, closing it afterwards.
func rawServer(t testing.TB, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return mustAddrPort(ln.Addr())
}
