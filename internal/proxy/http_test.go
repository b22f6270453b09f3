package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/testwait"
)

func TestHTTPForwardsWithHeaders(t *testing.T) {
	h := newHarness(t, Config{})
	be := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s host=%s xff=%s xfh=%s xfp=%s proto=%s",
			r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-For"),
			r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"), r.Proto)
	})
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	req, _ := http.NewRequest("GET", url(r)+"/a/b?c=d", nil)
	req.Host = "example.test"
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // spoofed: tend is the edge
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	want := "GET /a/b?c=d host=example.test xff=127.0.0.1 xfh=example.test xfp=http proto=HTTP/1.1"
	if res.StatusCode != 200 || string(body) != want {
		t.Fatalf("got %d %q\nwant %q", res.StatusCode, body, want)
	}
}

func TestHTTPServesCleartextHTTP2(t *testing.T) {
	h := newHarness(t, Config{})
	be := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) })
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Get(url(r))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || string(body) != "HTTP/1.1" {
		t.Fatalf("client spoke %s, backend heard %q; want HTTP/2 in front, HTTP/1.1 behind", res.Proto, body)
	}
}

// wsEcho is a backend that does an upgrade handshake by hand and then
// echoes bytes.
func wsEcho(t *testing.T) Backend {
	addr := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Header.Get("Upgrade") != "websocket" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br)
	})
	return Backend{ID: "ws", Replica: "ws/1", Addr: addr, Ready: true}
}

func TestHTTPWebSocketUpgrade(t *testing.T) {
	h := newHarness(t, Config{})
	r := routeOf(t, "ws", HTTP, wsEcho(t))
	h.sync(r)
	// Header names are case-insensitive: some clients send them in lower case.
	for _, head := range []string{"Connection: Upgrade\r\nUpgrade: websocket", "connection: upgrade\r\nupgrade: websocket"} {
		c, err := net.Dial("tcp", r.Listen.String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(testwait.For))
		io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: x\r\n"+head+"\r\n\r\n")
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake with %q: %v %v", head, res, err)
		}
		for _, msg := range []string{"hello\n", "again\n"} {
			io.WriteString(c, msg)
			got, err := br.ReadString('\n')
			if err != nil || got != msg {
				t.Fatalf("echo %q: got %q, %v", msg, got, err)
			}
		}
		if n := inflight(h.m, "ws"); n != 1 {
			t.Errorf("in flight during the session: %d", n)
		}
		c.Close()
		testwait.Eventually(t, "the session to end", func() bool { return inflight(h.m, "ws") == 0 })
	}
}

// TestHTTPDropsHopHeaders: the headers of one connection, in any case,
// and those its Connection header names, stay on their side of the proxy.
func TestHTTPDropsHopHeaders(t *testing.T) {
	h := newHarness(t, Config{})
	be, heard := recordingReplica(t, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=5\r\n"+
		"connection: keep-alive, x-hop\r\nx-hop: 1\r\nx-end: 2\r\n\r\nok")
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	req, _ := http.NewRequest("GET", url(r), nil)
	req.Header.Set("Connection", "x-secret")
	req.Header.Set("X-Secret", "1")
	req.Header.Set("Keep-Alive", "timeout=9")
	req.Header.Set("X-End", "kept")
	res, body := h.send(req)
	got := (<-heard).Header
	if got.Get("X-Secret") != "" || got.Get("Keep-Alive") != "" || got.Get("X-End") != "kept" {
		t.Errorf("the replica heard %v", got)
	}
	if res.StatusCode != 200 || string(body) != "ok" || res.Header.Get("X-Hop") != "" ||
		res.Header.Get("Keep-Alive") != "" || res.Header.Get("X-End") != "2" {
		t.Errorf("the client got %d %q with %v", res.StatusCode, body, res.Header)
	}
}

func inflight(m *Manager, service string) int64 {
	for _, s := range m.Stats() {
		if s.Service == service {
			return s.InFlight
		}
	}
	return -1
}

func TestHTTPStreamsPromptly(t *testing.T) {
	h := newHarness(t, Config{})
	release := make(chan struct{})
	be := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "second\n")
	})
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	res, err := h.client.Get(url(r))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n') // would block until release without flushing
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(release)
	if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
		t.Fatalf("rest %q", rest)
	}
}

func TestHTTPNoReadyReplicaIs503(t *testing.T) {
	h := newFakeHarness(t, Config{Hold: 200 * time.Millisecond})
	var hits counter
	be := backendServer(t, "web/1", named("web/1", &hits))
	be.Ready = false
	for name, r := range map[string]Route{
		"unready": routeOf(t, "web", HTTP, be),
		"none":    routeOf(t, "api", HTTP),
	} {
		t.Run(name, func(t *testing.T) {
			h.sync(r)
			res := h.getAsync(url(r))
			h.held(r, 1)
			h.clk.Advance(199 * time.Millisecond)
			select {
			case got := <-res:
				t.Fatalf("answered %+v before the hold of 200ms was over", got)
			default:
			}
			h.clk.Advance(time.Millisecond)
			if got := wait(t, res, "the answer"); got.code != 503 || got.body != "tend: no ready replica of "+r.Service+"\n" {
				t.Fatalf("got %+v", got)
			}
		})
	}
	if hits.get() != 0 {
		t.Fatalf("the unready backend got %d requests", hits.get())
	}
}

func TestHTTPErrorAnswers(t *testing.T) {
	h := newFakeHarness(t, Config{ResponseTimeout: 100 * time.Millisecond})
	t.Run("refused is 502", func(t *testing.T) {
		r := routeOf(t, "web", HTTP, Backend{ID: "dead", Replica: "web/1", Addr: deadAddr(t), Ready: true})
		h.sync(r)
		res := h.getAsync(url(r))
		h.held(r, 1) // refused: a pause, and again, within the hold
		h.clk.Advance(2 * time.Second)
		if got := wait(t, res, "the answer"); got.code != 502 || got.body != "tend: no replica of web answered\n" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("slow is 504", func(t *testing.T) {
		stop := make(chan struct{})
		defer close(stop)
		arrived := make(chan struct{}, 1)
		be := backendServer(t, "slow/1", func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		})
		r := routeOf(t, "slow", HTTP, be)
		h.sync(r)
		res := h.getAsync(url(r))
		wait(t, arrived, "the request to reach the replica")
		h.clk.Advance(99 * time.Millisecond)
		select {
		case got := <-res:
			t.Fatalf("answered %+v before the response timeout", got)
		default:
		}
		h.clk.Advance(time.Millisecond)
		if got := wait(t, res, "the answer"); got.code != 504 || got.body != "tend: no replica of slow answered in time\n" {
			t.Fatalf("got %+v", got)
		}
	})
}

// TestHTTPRetriesRefusedConnections is the retry goal: a dead replica and a
// live one, and no GET fails.
func TestHTTPRetriesRefusedConnections(t *testing.T) {
	h := newHarness(t, Config{})
	var hits counter
	live := backendServer(t, "web/2", named("web/2", &hits))
	dead := Backend{ID: "dead", Replica: "web/1", Addr: deadAddr(t), Ready: true}
	r := routeOf(t, "web", HTTP, dead, live)
	h.sync(r)
	failed := 0
	for range 200 {
		if code, _ := h.get(url(r)); code != 200 {
			failed++
		}
	}
	if failed != 0 || hits.get() != 200 {
		t.Fatalf("%d of 200 GETs failed; the live replica got %d", failed, hits.get())
	}
	if m := scrape(t, h.m.Handler()); !regexp.MustCompile(`tend_proxy_retries_total\{project="p",service="web"\} [1-9]`).MatchString(m) {
		t.Fatalf("no retry counted:\n%s", m)
	}
}

// TestHTTPRetryRules: a 503 is retried for idempotent methods only; a
// refused connection for any method, with its body.
func TestHTTPRetryRules(t *testing.T) {
	h := newHarness(t, Config{EjectAfter: 1000})
	var badHits, goodHits counter
	bad := backendServer(t, "web/1", failing(503, &badHits))
	good := backendServer(t, "web/2", func(w http.ResponseWriter, r *http.Request) {
		goodHits.inc()
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	})
	r := routeOf(t, "web", HTTP, bad, good)
	r.Idempotent = []string{"PUT"}
	h.sync(r)
	for _, method := range []string{"GET", "PUT", "POST"} {
		t.Run(method, func(t *testing.T) {
			// A fresh failing backend each time, cheapest of all so it is
			// picked first: the last one's penalty keeps it out.
			r.Backends[0].ID = "bad-" + method
			h.sync(r)
			backendByID(h.pool(r), r.Backends[0].ID).reset(h.pool(r).now(), 0)
			bad0, good0 := badHits.get(), goodHits.get()
			n, unavailable := 0, 0
			// Until the failing replica has been tried at least once.
			for n < 20 && (n < 5 || badHits.get() == bad0) {
				n++
				code, body := h.do(method, url(r), "payload")
				switch {
				case code == 503:
					unavailable++
				case code != 200 || body != method+" payload":
					t.Fatalf("got %d %q", code, body)
				}
			}
			bad, good := badHits.get()-bad0, goodHits.get()-good0
			if bad == 0 {
				t.Fatal("the failing replica was never tried")
			}
			if method == "POST" {
				if unavailable != bad || bad+good != n {
					t.Fatalf("POST was retried: %d requests, %d 503s, %d+%d backend hits", n, unavailable, bad, good)
				}
			} else if unavailable != 0 || good != n {
				t.Fatalf("%s was not retried: %d requests, %d 503s, %d+%d backend hits", method, n, unavailable, bad, good)
			}
		})
	}
	t.Run("POST with a body after a refused connection", func(t *testing.T) {
		dead := Backend{ID: "dead", Replica: "web/3", Addr: deadAddr(t), Ready: true}
		r := r
		r.Backends = []Backend{dead, good.withReplica("web/2")}
		h.sync(r)
		for range 10 {
			if code, body := h.do("POST", url(r), "payload"); code != 200 || body != "POST payload" {
				t.Fatalf("got %d %q", code, body)
			}
		}
	})
}

func (b Backend) withReplica(name string) Backend { b.Replica = name; return b }

func TestHTTPBackendAbortDoesNotHurtTheProxy(t *testing.T) {
	h := newFakeHarness(t, Config{})
	be := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "ok")
	})
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	res := h.getAsync(url(r) + "/abort")
	h.held(r, 1) // a GET cut short waits for another replica, within the hold
	h.clk.Advance(2 * time.Second)
	if got := wait(t, res, "the answer"); got.code != 502 {
		t.Fatalf("a truncated response came through as %+v", got)
	}
	// Malformed requests are the server's to answer.
	c, err := net.Dial("tcp", r.Listen.String())
	if err != nil {
		t.Fatal(err)
	}
	// Longer than the HTTP/2 preface, which the server reads first.
	io.WriteString(c, "THIS IS NOT AN HTTP REQUEST\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(testwait.For))
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Fatalf("malformed request answered %q", line)
	}
	if code, body := h.get(url(r)); code != 200 || body != "ok" {
		t.Fatalf("after the abort: %d %q", code, body)
	}
	testwait.Eventually(t, "no request in flight", func() bool { return inflight(h.m, "web") == 0 })
}

func TestHTTPTLSClientGetsNoHang(t *testing.T) {
	h := newHarness(t, Config{})
	r := routeOf(t, "web", HTTP, backendServer(t, "web/1", named("web/1", nil)))
	h.sync(r)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testwait.For}, "tcp", r.Listen.String(), &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		c.Close()
		t.Fatal("a TLS handshake succeeded on a cleartext port")
	}
	if code, _ := h.get(url(r)); code != 200 {
		t.Fatalf("after a TLS client: %d", code)
	}
}

func TestHTTPPrefersTheFasterReplica(t *testing.T) {
	h := newHarness(t, Config{})
	var fast, slow counter
	r := routeOf(t, "web", HTTP,
		backendServer(t, "web/1", named("web/1", &fast)),
		backendServer(t, "web/2", func(w http.ResponseWriter, r *http.Request) {
			slow.inc()
			time.Sleep(20 * time.Millisecond)
		}))
	h.sync(r)
	for range 60 {
		if code, _ := h.get(url(r)); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	if slow.get() > 10 {
		t.Fatalf("the 20 ms replica got %d of 60 sequential requests (fast: %d)", slow.get(), fast.get())
	}
}

// TestHTTPClientGoneIsNoFailure: a client that leaves while its request
// waits for the replica (over HTTP/2: resets its stream) is no failure of
// the replica's, and the replica's connection is let go.
func TestHTTPClientGoneIsNoFailure(t *testing.T) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &protos}}
	defer h2.CloseIdleConnections()
	for _, proto := range []string{"http1", "http2"} {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, Config{EjectAfter: 1})
			started := make(chan struct{}, 8)
			left := make(chan struct{}, 8)
			slow := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
				started <- struct{}{}
				<-r.Context().Done()
				left <- struct{}{}
			})
			other := backendServer(t, "web/2", named("web/2", nil))
			r := routeOf(t, "web", HTTP, slow)
			h.sync(r)
			c := h.client
			if proto == "http2" {
				c = h2
			}
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", url(r), nil)
			go func() { <-started; cancel() }()
			if _, err := c.Do(req); err == nil {
				t.Fatal("a cancelled request succeeded")
			}
			testwait.Eventually(t, "the proxy to let go", func() bool { return inflight(h.m, "web") == 0 })
			wait(t, left, "the replica to see its connection closed")
			r.Backends = append(r.Backends, other)
			h.sync(r)
			if got := backendByID(h.pool(r), slow.ID).streak.Load(); got != 0 {
				t.Fatalf("a client that left counted as %d failures of its replica", got)
			}
		})
	}
}

// TestHTTPEjectsAndReadmits: a replica answering 500 is ejected after 5 in
// a row, journaled, readmitted after its period, and ejected again by its
// next failure.
func TestHTTPEjectsAndReadmits(t *testing.T) {
	h := newHarness(t, Config{EjectFor: 100 * time.Millisecond})
	var badHits counter
	bad := backendServer(t, "web/1", failing(500, &badHits))
	r := routeOf(t, "web", HTTP, bad, backendServer(t, "web/2", named("web/2", nil)))
	h.sync(r)
	pinBad := func() { backendByID(h.pool(r), bad.ID).reset(h.pool(r).now(), 0) }
	for i := 0; len(h.eventsOf(EventEject)) == 0; i++ {
		if i == 100 {
			t.Fatalf("no ejection after 100 requests, %d to the failing replica", badHits.get())
		}
		pinBad() // keep it the cheapest so the streak builds quickly
		h.get(url(r))
	}
	ev := h.eventsOf(EventEject)[0]
	if ev.Replica != "web/1" || ev.ID != bad.ID || ev.Service != "web" || ev.Project != "p" ||
		ev.Message != "5 consecutive 500 responses; ejected for 100ms" || ev.Time.IsZero() {
		t.Fatalf("eject event %+v", ev)
	}
	n := badHits.get()
	for range 10 {
		if code, body := h.get(url(r)); code != 200 || body != "web/2" {
			t.Fatalf("while ejected: %d %q", code, body)
		}
	}
	if badHits.get() != n {
		t.Fatal("the ejected replica got requests")
	}
	if s := h.m.Stats()[0].Replicas[0]; !s.Ejected {
		t.Fatalf("stats do not show the ejection: %+v", s)
	}
	testwait.Eventually(t, "readmission", func() bool {
		h.get(url(r))
		return len(h.eventsOf(EventReadmit)) == 1
	})
	testwait.Eventually(t, "the second ejection", func() bool {
		pinBad()
		h.get(url(r))
		return len(h.eventsOf(EventEject)) == 2
	})
	if ev := h.eventsOf(EventEject)[1]; ev.Message != "failed on probation (500 responses); ejected for 200ms" {
		t.Fatalf("second eject event %+v", ev)
	}
	if m := scrape(t, h.m.Handler()); !strings.Contains(m, `tend_proxy_ejections_total{project="p",replica="web/1",service="web"} 2`) {
		t.Fatal("metrics lack the ejections")
	}
}

func TestHTTPHoldsARequestUntilAReplicaIsReady(t *testing.T) {
	h := newFakeHarness(t, Config{Hold: 3 * time.Second})
	var hits counter
	be := backendServer(t, "web/1", named("web/1", &hits))
	be.Ready = false
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	res := h.getAsync(url(r))
	h.held(r, 1) // the request waits: no replica is ready
	h.clk.Advance(2900 * time.Millisecond)
	select {
	case got := <-res:
		t.Fatalf("answered %+v while no replica was ready, within the hold", got)
	default:
	}
	r.Backends[0].Ready = true
	h.sync(r)
	if got := wait(t, res, "the held request"); got.code != 200 || got.body != "web/1" || hits.get() != 1 {
		t.Fatalf("held request: %+v, %d hits; want 200 once the replica became ready", got, hits.get())
	}
}

// TestHTTPCutBodyIsAFailedAttempt: a replica that dies halfway through a
// small answer has sent the client nothing yet, so the GET goes to another
// replica; with no other, the client gets a 502, never a short 200.
func TestHTTPCutBodyIsAFailedAttempt(t *testing.T) {
	h := newFakeHarness(t, Config{})
	cut := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	r := routeOf(t, "web", HTTP, cut)
	h.sync(r)
	res := h.getAsync(url(r))
	h.held(r, 1) // waits for another replica, within the hold
	h.clk.Advance(2 * time.Second)
	if got := wait(t, res, "the answer"); got.code != 502 {
		t.Fatalf("alone, the cut replica's answer came through as %+v", got)
	}
	r.Backends = append(r.Backends, backendServer(t, "web/2", named("web/2", nil)))
	h.sync(r)
	for range 20 {
		backendByID(h.pool(r), cut.ID).reset(h.pool(r).now(), 0) // cheapest: picked first
		if code, body := h.get(url(r)); code != 200 || body != "web/2" {
			t.Fatalf("got %d %q; want the other replica's answer", code, body)
		}
	}
}

// TestHTTPLargeBodiesStreamBothWays: an upload larger than what is kept
// for a retry, of known and of unknown length, and a large answer.
func TestHTTPLargeBodiesStreamBothWays(t *testing.T) {
	h := newHarness(t, Config{})
	be := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "%d %s\n", n, r.Header.Get("X-Test"))
		io.WriteString(w, strings.Repeat("y", 1<<20))
	})
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	size := 5 << 20
	for _, known := range []bool{true, false} {
		var body io.Reader = strings.NewReader(strings.Repeat("x", size))
		if !known {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
		req, _ := http.NewRequest("PUT", url(r), body)
		req.Header.Set("X-Test", "kept")
		res, got := h.send(req)
		want := fmt.Sprintf("%d kept\n", size)
		if res.StatusCode != 200 || !strings.HasPrefix(string(got), want) || len(got) != len(want)+1<<20 {
			t.Fatalf("known length %v: %d, %d bytes starting %.40q", known, res.StatusCode, len(got), got)
		}
	}
}

// TestHTTPStaleIdleConnectionIsNoFailure: a replica that closes its
// keep-alive connections while idle costs no request and no failure.
func TestHTTPStaleIdleConnectionIsNoFailure(t *testing.T) {
	h := newHarness(t, Config{EjectAfter: 1})
	srv := httptest.NewUnstartedServer(named("web/1", nil))
	srv.Config.IdleTimeout = 20 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	be := Backend{ID: "web/1", Replica: "web/1", Addr: netip.MustParseAddrPort(srv.Listener.Addr().String()), Ready: true}
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	for range 5 {
		if code, body := h.get(url(r)); code != 200 || body != "web/1" {
			t.Fatalf("got %d %q", code, body)
		}
		time.Sleep(60 * time.Millisecond) // the replica closes the idle connection
	}
	if got := backendByID(h.pool(r), be.ID).streak.Load(); got != 0 || len(h.eventsOf(EventEject)) != 0 {
		t.Fatalf("stale connections counted as failures: streak %d, %d ejections", got, len(h.eventsOf(EventEject)))
	}
}

// TestHTTPEmptyPostSaysItsLength: an empty POST reaches the replica with
// Content-Length: 0, as net/http's client sends it; a GET with none.
func TestHTTPEmptyPostSaysItsLength(t *testing.T) {
	h := newHarness(t, Config{})
	be, heard := recordingReplica(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	for method, want := range map[string]string{"POST": "POST 0 ", "GET": "GET  "} {
		if code, _ := h.do(method, url(r), ""); code != 200 {
			t.Fatalf("%s: %d", method, code)
		}
		req := <-heard
		if got := req.Method + " " + strings.Join(req.Header["Content-Length"], ",") + " " + strings.Join(req.TransferEncoding, ","); got != want {
			t.Errorf("the replica heard %q, want %q", got, want)
		}
	}
}

// recordingReplica answers every request with the raw answer and hands
// the request, as the replica heard it, to the channel.
func recordingReplica(t *testing.T, answer string) (Backend, <-chan *http.Request) {
	heard := make(chan *http.Request, 4)
	addr := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			heard <- req
			io.WriteString(c, answer)
		}
	})
	return Backend{ID: "raw", Replica: "web/1", Addr: addr, Ready: true}, heard
}

// TestHTTPHoldsLongerWhileARestartIsUnderWay: a route marked Recovering (no
// replica ready, one on its way back) holds requests for RecoveryHold, past
// the usual Hold, and serves them once the replica is ready; unmarked, the
// same request gets its 503 when the Hold ends (issue 20: a service of one
// replica the engine takes seconds to start).
func TestHTTPHoldsLongerWhileARestartIsUnderWay(t *testing.T) {
	h := newFakeHarness(t, Config{Hold: 2 * time.Second, RecoveryHold: 10 * time.Second})
	var hits counter
	be := backendServer(t, "web/1", named("web/1", &hits))
	be.Ready = false
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	res := h.getAsync(url(r))
	h.held(r, 1)
	r.Recovering = true // the supervisor starts the replica again meanwhile
	h.sync(r)
	h.clk.Advance(3900 * time.Millisecond) // past the 2 s hold, as an engine that takes 3.8 s to start
	select {
	case got := <-res:
		t.Fatalf("answered %+v while the replica was on its way back, within the recovery hold", got)
	default:
	}
	r.Backends[0].Ready, r.Recovering = true, false
	h.sync(r)
	if got := wait(t, res, "the held request"); got.code != 200 || got.body != "web/1" || hits.get() != 1 {
		t.Fatalf("held request: %+v, %d hits; want 200 once the replica was back", got, hits.get())
	}

	r.Backends[0].Ready = false // down, and nothing on its way back: the usual hold
	h.sync(r)
	res = h.getAsync(url(r))
	h.held(r, 1)
	h.clk.Advance(2 * time.Second)
	if got := wait(t, res, "the answer"); got.code != 503 {
		t.Fatalf("with no restart under way: %+v, want 503 after the 2 s hold", got)
	}
}

// TestHTTPPostNotSentOnAClosedIdleConnection: a POST, which is not sent
// twice once it may have reached a replica, is not sent on a keep-alive
// connection the replica closed while it was idle, on any path: it
// reaches the replica, and nothing counts as a failure.
func TestHTTPPostNotSentOnAClosedIdleConnection(t *testing.T) {
	h := newHarness(t, Config{EjectAfter: 1})
	srv := httptest.NewServer(named("web/1", nil))
	t.Cleanup(srv.Close)
	be := Backend{ID: "web/1", Replica: "web/1", Addr: netip.MustParseAddrPort(srv.Listener.Addr().String()), Ready: true}
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &protos}, Timeout: testwait.For}
	defer h2.CloseIdleConnections()
	for _, path := range []string{"loops", "fasthttp", "http2"} {
		for i := range 3 {
			req, _ := http.NewRequest("POST", url(r), strings.NewReader("x"))
			if got := wait(t, sendAsync(h, h2, path, req), "the answer"); got.code != 200 || got.body != "web/1" {
				t.Errorf("%s, POST %d: got %+v", path, i+1, got)
			}
			srv.CloseClientConnections() // as a replica's idle timeout does
		}
	}
	if got := backendByID(h.pool(r), be.ID).streak.Load(); got != 0 || len(h.eventsOf(EventEject)) != 0 {
		t.Fatalf("closed idle connections counted as failures: streak %d, %d ejections", got, len(h.eventsOf(EventEject)))
	}
}
