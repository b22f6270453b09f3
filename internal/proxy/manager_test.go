package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tend-sh/tend/internal/testwait"
)

// slowBackend holds each request until released, telling when one arrives.
type slowBackend struct {
	Backend
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

// free lets the held requests (and any later ones) finish.
func (s *slowBackend) free() { s.once.Do(func() { close(s.release) }) }

func newSlowBackend(t *testing.T, name string) *slowBackend {
	s := &slowBackend{arrived: make(chan struct{}, 16), release: make(chan struct{})}
	t.Cleanup(s.free)
	s.Backend = backendServer(t, name, func(w http.ResponseWriter, r *http.Request) {
		s.arrived <- struct{}{}
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
		io.WriteString(w, name)
	})
	return s
}

func (s *slowBackend) waitArrived(t *testing.T) {
	t.Helper()
	select {
	case <-s.arrived:
	case <-time.After(testwait.For):
		t.Fatal("the request did not reach the backend")
	}
}

type result struct {
	code int
	body string
}

// getAsync fetches url in the background.
func (h *harness) getAsync(url string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		res, err := h.client.Get(url)
		if err != nil {
			ch <- result{body: err.Error()}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		ch <- result{res.StatusCode, string(b)}
	}()
	return ch
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testwait.For):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestDrainWaitsForRequestsInFlight(t *testing.T) {
	h := newFakeHarness(t, Config{})
	slow := newSlowBackend(t, "web/1")
	r := routeOf(t, "web", HTTP, slow.Backend)
	h.sync(r)
	res := h.getAsync(url(r))
	slow.waitArrived(t)

	drained := make(chan struct{})
	go func() {
		h.m.Drain(context.Background(), slow.ID)
		close(drained)
	}()
	// Out of rotation at once: the only replica drains, so a new request
	// waits for another and gets 503 when the hold is over.
	testwait.Eventually(t, "Drain to take the replica out", func() bool { return h.pool(r).pick(h.pool(r).now()) == nil })
	refused := h.getAsync(url(r))
	h.held(r, 1)
	h.clk.Advance(2 * time.Second) // Drain polls meanwhile
	if got := wait(t, refused, "the new request"); got.code != 503 {
		t.Fatalf("a request to a draining route got %+v", got)
	}
	select {
	case <-drained:
		t.Fatal("Drain returned with a request in flight")
	case <-time.After(50 * time.Millisecond):
	}
	slow.free()
	if got := wait(t, res, "the request in flight"); got.code != 200 || got.body != "web/1" {
		t.Fatalf("the request in flight got %+v", got)
	}
	testwait.Eventually(t, "Drain to return", func() bool {
		h.clk.Advance(10 * time.Millisecond) // its next look
		select {
		case <-drained:
			return true
		default:
			return false
		}
	})

	// Draining sticks across a Sync that still lists the backend.
	h.sync(r)
	again := h.getAsync(url(r))
	h.held(r, 1)
	h.clk.Advance(2 * time.Second)
	if got := wait(t, again, "the request after Sync"); got.code != 503 {
		t.Fatalf("a drained backend came back: %+v", got)
	}
}

func TestDrainGivesUpWhenItsContextEnds(t *testing.T) {
	h := newHarness(t, Config{})
	slow := newSlowBackend(t, "web/1")
	r := routeOf(t, "web", HTTP, slow.Backend)
	h.sync(r)
	res := h.getAsync(url(r))
	slow.waitArrived(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	h.m.Drain(ctx, slow.ID)
	slow.free()
	wait(t, res, "the request in flight")
	h.m.Drain(context.Background(), "no-such-backend") // returns at once
}

func TestSyncSwapsBackendsWithoutDroppingRequests(t *testing.T) {
	h := newHarness(t, Config{})
	old := newSlowBackend(t, "web/1")
	r := routeOf(t, "web", HTTP, old.Backend)
	h.sync(r)
	res := h.getAsync(url(r))
	old.waitArrived(t)

	r.Backends = []Backend{backendServer(t, "web/2", named("web/2", nil))}
	h.sync(r)
	h.sync(r) // idempotent
	for range 5 {
		if code, body := h.get(url(r)); code != 200 || body != "web/2" {
			t.Fatalf("after the swap: %d %q", code, body)
		}
	}
	// Drain still finds the removed backend's request.
	drained := make(chan struct{})
	go func() { h.m.Drain(context.Background(), old.ID); close(drained) }()
	old.free()
	if got := wait(t, res, "the request in flight"); got.code != 200 || got.body != "web/1" {
		t.Fatalf("the request to the removed backend got %+v", got)
	}
	wait(t, drained, "Drain of the removed backend")
}

func TestSyncRemovesRoutesGracefully(t *testing.T) {
	h := newHarness(t, Config{})
	slow := newSlowBackend(t, "web/1")
	r := routeOf(t, "web", HTTP, slow.Backend)
	h.sync(r)
	res := h.getAsync(url(r))
	slow.waitArrived(t)
	h.sync()
	if c, err := net.Dial("tcp", r.Listen.String()); err == nil {
		c.Close()
		t.Fatal("the removed route still accepts connections")
	}
	slow.free()
	if got := wait(t, res, "the request in flight"); got.code != 200 {
		t.Fatalf("the request in flight got %+v", got)
	}
	if s := h.m.Stats(); len(s) != 0 {
		t.Fatalf("stats of a removed service: %+v", s)
	}
}

func TestSyncReportsBindErrorsAndServesTheRest(t *testing.T) {
	h := newHarness(t, Config{})
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	be := backendServer(t, "web/1", named("web/1", nil))
	bad := Route{Project: "p", Service: "web", Listen: mustAddrPort(taken.Addr()), Backends: []Backend{be}}
	good := routeOf(t, "api", HTTP, be)
	err = h.m.Sync([]Route{bad, good})
	want := "proxy: web: listen " + taken.Addr().String() + ": address already in use"
	if err == nil || err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Sync error %q, want %q", err, want)
	}
	if code, _ := h.get(url(good)); code != 200 {
		t.Fatalf("the other route: %d", code)
	}
	taken.Close()
	h.sync(bad, good) // tried again
	if code, _ := h.get(url(bad)); code != 200 {
		t.Fatalf("the route bound on retry: %d", code)
	}
	dup := good
	dup.Service = "other"
	if err := h.m.Sync([]Route{good, dup}); err == nil || !strings.Contains(err.Error(), "already published by api") {
		t.Fatalf("two routes on one port: %v", err)
	}
}

func TestSyncChangesModeInPlace(t *testing.T) {
	h := newHarness(t, Config{})
	r := routeOf(t, "web", HTTP, backendServer(t, "web/1", named("web/1", nil)))
	h.sync(r)
	r.Mode = TCP
	h.sync(r) // the same port, rebound for TCP
	c, err := net.Dial("tcp", r.Listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(testwait.For))
	b, _ := io.ReadAll(c)
	if !strings.HasSuffix(string(b), "web/1") {
		t.Fatalf("through TCP: %q", b)
	}
}

func TestManagerLifecycle(t *testing.T) {
	before := goruntime.NumGoroutine()
	t.Cleanup(func() { testwait.Goroutines(t, before) }) // after the backend's cleanup
	m := NewManager(Config{})
	be := backendServer(t, "web/1", named("web/1", nil))
	r := routeOf(t, "web", HTTP, be)
	if err := m.Sync([]Route{r}); err != nil { // before Run: bound now, served from Run
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	tr := &http.Transport{}
	res, err := (&http.Client{Transport: tr}).Get(url(r))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	tr.CloseIdleConnections()
	if err := m.Run(ctx); err == nil {
		t.Fatal("a second Run succeeded")
	}
	cancel()
	if err := wait(t, done, "Run to return"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := m.Sync([]Route{r}); err == nil {
		t.Fatal("Sync after Run ended succeeded")
	}
}

func TestUnspecifiedListenAddress(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:8080":   ":8080",
		"[::]:8080":      ":8080",
		"127.0.0.1:8080": "127.0.0.1:8080",
		"[::1]:8080":     "[::1]:8080",
	} {
		if got := listenAddr(netip.MustParseAddrPort(in)); got != want {
			t.Errorf("listenAddr(%s) = %s, want %s", in, got, want)
		}
	}
	if got := listenAddr(netip.AddrPortFrom(netip.Addr{}, 80)); got != ":80" {
		t.Errorf("listenAddr of a zero address = %s", got)
	}
}

func TestMetricsAndStats(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newFakeHarness(t, Config{Registry: reg})
	be := backendServer(t, "web/1", named("web/1", nil))
	r := routeOf(t, "web", HTTP, be)
	down := routeOf(t, "down", HTTP) // no replica at all
	h.sync(r, down)
	for range 20 {
		if code, _ := h.get(url(r)); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	held := h.getAsync(url(down))
	h.held(down, 1)
	h.clk.Advance(2 * time.Second)
	wait(t, held, "the request no replica could take")

	// The client can have its answer a moment before the proxy has
	// accounted for it.
	testwait.Eventually(t, "the requests to be accounted for", func() bool {
		s := h.m.Stats()
		return len(s) == 2 && s[1].InFlight == 0 && s[1].Codes["2xx"] == 20
	})
	stats := h.m.Stats()
	if len(stats) != 2 || stats[0].Service != "down" || stats[1].Service != "web" {
		t.Fatalf("stats %+v", stats)
	}
	web := stats[1]
	if web.Codes["2xx"] != 20 || web.Rate <= 0 || web.P50 <= 0 || web.P99 < web.P50 || web.InFlight != 0 {
		t.Fatalf("service traffic %+v", web.Traffic)
	}
	if len(web.Replicas) != 1 || web.Replicas[0].Replica != "web/1" || !web.Replicas[0].Ready ||
		web.Replicas[0].ID != be.ID || web.Replicas[0].Codes["2xx"] != 20 {
		t.Fatalf("replicas %+v", web.Replicas)
	}
	if down := stats[0]; down.Codes["5xx"] != 1 || len(down.Replicas) != 0 {
		t.Fatalf("down %+v", down)
	}

	res := scrape(t, h.m.Handler())
	for _, want := range []string{
		`tend_proxy_requests_total{code="200",project="p",replica="web/1",service="web"} 20`,
		`tend_proxy_requests_total{code="503",project="p",replica="",service="down"} 1`,
		`tend_proxy_request_duration_seconds_count{project="p",replica="web/1",service="web"} 20`,
		`tend_proxy_request_duration_seconds_bucket{project="p",replica="web/1",service="web",le="0.0005"}`,
		`tend_proxy_in_flight{project="p",replica="web/1",service="web"} 0`,
	} {
		if !strings.Contains(res, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !regexp.MustCompile(`(?m)^# TYPE tend_proxy_retries_total counter$`).MatchString(res) {
		t.Errorf("metrics lack tend_proxy_retries_total")
	}
}

func scrape(t *testing.T, h http.Handler) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

func TestPortZeroGetsAPort(t *testing.T) {
	h := newHarness(t, Config{})
	r := Route{Project: "p", Service: "web", Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Backends: []Backend{backendServer(t, "web/1", named("web/1", nil))}}
	h.sync(r)
	h.sync(r) // the same route: keeps its port
	got, ok := h.m.Addr(r.Listen)
	if !ok || got.Port() == 0 {
		t.Fatalf("Addr = %s, %v", got, ok)
	}
	if code, body := h.get("http://" + got.String()); code != 200 || body != "web/1" {
		t.Fatalf("got %d %q", code, body)
	}
	if _, ok := h.m.Addr(netip.MustParseAddrPort("127.0.0.1:1")); ok {
		t.Fatal("Addr of a route that does not exist")
	}
}

// TestRunCutsWhatOutlivesTheGrace: when Run ends, a slow request and an
// upgraded connection get Config.Grace, then are cut, and Run returns.
func TestRunCutsWhatOutlivesTheGrace(t *testing.T) {
	h := newHarness(t, Config{Grace: 50 * time.Millisecond})
	slow := newSlowBackend(t, "web/1")
	web := routeOf(t, "web", HTTP, slow.Backend)
	ws := routeOf(t, "ws", HTTP, wsEcho(t))
	h.sync(web, ws)
	res := h.getAsync(url(web))
	slow.waitArrived(t)
	c, err := net.Dial("tcp", ws.Listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(testwait.For))
	br := bufio.NewReader(c)
	if r, err := http.ReadResponse(br, nil); err != nil || r.StatusCode != 101 {
		t.Fatalf("handshake: %v", err)
	}
	start := time.Now()
	h.stop()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Run took %s to return with a 50 ms grace", took)
	}
	if got := wait(t, res, "the cut request"); got.code == 200 {
		t.Errorf("the slow request outlived Run: %+v", got)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the upgraded connection outlived Run")
	}
}

// TestAnswered: the supervisor's evidence that a replica is not hung is
// its last answer under 500; a 5xx or no request at all is none.
func TestAnswered(t *testing.T) {
	h := newFakeHarness(t, Config{})
	ok := backendServer(t, "web/1", named("web/1", nil))
	sick := backendServer(t, "web/2", failing(500, nil))
	web, api := routeOf(t, "web", HTTP, ok), routeOf(t, "api", HTTP, sick)
	h.sync(web, api)
	if _, got := h.m.Answered(ok.ID); got {
		t.Fatal("answered before any request")
	}
	if code, _ := h.get(url(web)); code != 200 {
		t.Fatalf("status %d", code)
	}
	h.get(url(api))
	h.clk.Advance(1500 * time.Millisecond)
	if ago, got := h.m.Answered(ok.ID); !got || ago < 1500*time.Millisecond || ago > 2*time.Second {
		t.Fatalf("answered %v %s ago, want 1.5s", got, ago)
	}
	if _, got := h.m.Answered(sick.ID); got {
		t.Fatal("a 500 counted as an answer")
	}
}
