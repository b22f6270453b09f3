package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/testwait"
)

// What the event loops (loop.go, stream.go) must get right that the
// goroutine path had for free: framing on a connection the proxy parses
// itself, and connections that leave the loop mid-way.

// dialRoute opens a raw client connection to r.
func dialRoute(t *testing.T, r Route) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", r.Listen.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// readAnswer reads one answer from br, its body whole.
func readAnswer(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return res, string(body)
}

// TestLoopPipelinedRequestsAnswerInOrder: requests a client sends ahead
// (in one write, the second split mid-head) are answered in order on
// the same connection.
func TestLoopPipelinedRequestsAnswerInOrder(t *testing.T) {
	h := newHarness(t, Config{})
	be := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	})
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	c, br := dialRoute(t, r)
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHo")
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, "st: x\r\n\r\nHEAD /three HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"/one", "/two", ""} {
		method := "GET"
		if want == "" {
			method = "HEAD"
		}
		if res, body := readAnswer(t, br, method); res.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want %q", res.StatusCode, body, want)
		}
	}
}

// TestLoopClientThatDoesNotReadIsNotServedAhead: a client that sends
// many requests ahead and reads none of the answers gets no more served
// than what fits in its buffers (the proxy would otherwise hold every
// answer in memory), and all of them once it reads.
func TestLoopClientThatDoesNotReadIsNotServedAhead(t *testing.T) {
	const n, size = 1000, 60 << 10
	h := newHarness(t, Config{})
	var served atomic.Int64
	be := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Length", strconv.Itoa(size)) // the loop's own path, not a stream
		w.Write(make([]byte, size))
	})
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	c, br := dialRoute(t, r)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	go io.WriteString(c, strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", n))
	time.Sleep(time.Second)
	if got := served.Load(); got > n/2 {
		t.Fatalf("%d of %d answers of %d KiB served to a client that read none", got, n, size>>10)
	}
	for i := range n {
		if res, body := readAnswer(t, br, "GET"); res.StatusCode != 200 || len(body) != size {
			t.Fatalf("answer %d: %d, %d bytes", i, res.StatusCode, len(body))
		}
	}
}

// TestLoopHTTP10Connections: an HTTP/1.0 client's connection closes after
// its answer unless it asked to keep it, and then it is told so.
func TestLoopHTTP10Connections(t *testing.T) {
	h := newHarness(t, Config{})
	r := routeOf(t, "web", HTTP, backendServer(t, "web/1", named("web/1", nil)))
	h.sync(r)

	c, br := dialRoute(t, r)
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
	res, body := readAnswer(t, br, "GET")
	if body != "web/1" || res.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("kept: %q, Connection %q", body, res.Header.Get("Connection"))
	}
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	if _, body := readAnswer(t, br, "GET"); body != "web/1" {
		t.Fatalf("second: %q", body)
	}
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open after an HTTP/1.0 answer: %v %v", n, err)
	}
}

// TestLoopLargeAnswersStream: answers larger than 64 KiB (of a known
// length, or chunked) stream; small chunked ones pass whole; either way a
// trailer arrives, and the connection serves the next request afterwards.
func TestLoopLargeAnswersStream(t *testing.T) {
	h := newHarness(t, Config{})
	big := strings.Repeat("z", 3<<20)
	be := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			io.WriteString(w, big)
		case "/chunked", "/bigchunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			if r.URL.Path == "/bigchunked" {
				io.WriteString(w, big[:100<<10])
				w.(http.Flusher).Flush()
			}
			io.WriteString(w, "part two")
			w.Header().Set("X-Sum", "17")
		default:
			io.WriteString(w, "small")
		}
	})
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	c, br := dialRoute(t, r)
	for _, path := range []string{"/big", "/small", "/chunked", "/bigchunked", "/small"} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		res, body := readAnswer(t, br, "GET")
		switch path {
		case "/big":
			if body != big {
				t.Fatalf("/big: %d bytes", len(body))
			}
		case "/chunked":
			if body != "part one,part two" || res.Trailer.Get("X-Sum") != "17" {
				t.Fatalf("/chunked: %q, trailer %v", body, res.Trailer)
			}
		case "/bigchunked":
			if body != "part one,"+big[:100<<10]+"part two" || res.Trailer.Get("X-Sum") != "17" {
				t.Fatalf("/bigchunked: %d bytes, trailer %v", len(body), res.Trailer)
			}
		default:
			if body != "small" {
				t.Fatalf("%s: %q", path, body)
			}
		}
	}
}

// TestLoopAnswerUntilClose: a replica that answers without a length and
// closes gets its whole answer to the client, whose connection then ends
// too (it has no other way to know the end).
func TestLoopAnswerUntilClose(t *testing.T) {
	h := newHarness(t, Config{})
	addr := rawServer(t, func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
		io.WriteString(c, strings.Repeat("u", 100<<10))
		c.Close()
	})
	r := routeOf(t, "web", HTTP, Backend{ID: "raw", Replica: "web/1", Addr: addr, Ready: true})
	h.sync(r)
	c, br := dialRoute(t, r)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	res, body := readAnswer(t, br, "GET")
	if res.StatusCode != 200 || len(body) != 100<<10 || !res.Close {
		t.Fatalf("got %d, %d bytes, close %v", res.StatusCode, len(body), res.Close)
	}
}

// TestLoopSkipsInterimAnswers: a 100 Continue or 103 Early Hints before
// the answer is not the answer.
func TestLoopSkipsInterimAnswers(t *testing.T) {
	h := newHarness(t, Config{})
	addr := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")
		}
	})
	r := routeOf(t, "web", HTTP, Backend{ID: "raw", Replica: "web/1", Addr: addr, Ready: true})
	h.sync(r)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &protos}, Timeout: testwait.For}
	defer h2.CloseIdleConnections()
	for _, path := range []string{"loops", "fasthttp", "http2"} {
		for range 2 {
			req, _ := http.NewRequest("GET", url(r), nil)
			if got := wait(t, sendAsync(h, h2, path, req), "the answer"); got.code != 200 || got.body != "real" {
				t.Fatalf("%s: got %+v", path, got)
			}
		}
	}
}

// TestLoopGarbageGetsAnAnswer: what the loop cannot parse goes to the
// goroutine server, which answers it as HTTP says.
func TestLoopGarbageGetsAnAnswer(t *testing.T) {
	h := newHarness(t, Config{})
	r := routeOf(t, "web", HTTP, backendServer(t, "web/1", named("web/1", nil)))
	h.sync(r)
	for _, tc := range []struct {
		send string
		code int
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n", 431},
	} {
		c, br := dialRoute(t, r)
		io.WriteString(c, tc.send)
		if res, _ := readAnswer(t, br, "GET"); res.StatusCode != tc.code {
			t.Fatalf("%.40q: got %d, want %d", tc.send, res.StatusCode, tc.code)
		}
	}
}

func TestChunkedLen(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		err  bool
	}{
		{"0\r\n\r\n", 5, false},
		{"5\r\nhello\r\n0\r\n\r\nGET", 15, false},
		{"5;ext=1\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", 31, false},
		{"5\r\nhel", -1, false},
		{"5\r\nhello\r\n0\r\nX-Sum: 1\r\n", -1, false},
		{"zz\r\n", 0, true},
	} {
		got, err := chunkedLen([]byte(tc.in))
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("chunkedLen(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestRequestOutlastsAMomentWithNoReplicaListening: when every replica
// refuses connections (all restarting at once), a request waits a moment
// and is tried again within the hold, on the loops and on both goroutine
// paths alike, rather than failing at once.
func TestRequestOutlastsAMomentWithNoReplicaListening(t *testing.T) {
	h := newFakeHarness(t, Config{Hold: 2 * time.Second})
	addr := freePort(t)
	r := routeOf(t, "web", HTTP, Backend{ID: "late", Replica: "web/1", Addr: addr, Ready: true})
	h.sync(r)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &protos}}
	defer h2.CloseIdleConnections()
	for _, path := range []string{"loops", "fasthttp", "http2"} {
		req, _ := http.NewRequest("POST", url(r), strings.NewReader("x"))
		res := sendAsync(h, h2, path, req)
		h.held(r, 1) // refused, so a pause
		l, err := net.Listen("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: named("web/1", nil)}
		go srv.Serve(l)
		h.clk.Advance(connectPause)
		if got := wait(t, res, "the answer"); got.code != 200 || got.body != "web/1" {
			t.Errorf("%s: got %+v", path, got)
		}
		// Its connections too: one the proxy parked would serve the next
		// path's request with nobody listening.
		srv.Close()
	}
}

// sendAsync sends req through the proxy on one of its paths, in the
// background: "loops" (as it is), "fasthttp" (with an Expect header, which
// the loops hand over) or "http2" (cleartext HTTP/2, through h2). A
// transport error is status 0 with the error text.
func sendAsync(h *harness, h2 *http.Client, path string, req *http.Request) <-chan result {
	ch := make(chan result, 1)
	c := h.client
	switch path {
	case "fasthttp":
		req.Header.Set("Expect", "100-continue")
	case "http2":
		c = h2
	}
	go func() {
		res, err := c.Do(req)
		if err != nil {
			ch <- result{body: err.Error()}
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		ch <- result{res.StatusCode, string(body)}
	}()
	return ch
}

// TestTrailersPassOnTheGoroutinePath: a chunked answer's trailer reaches
// the client also on a connection the loops handed over (here for its
// Expect header).
func TestTrailersPassOnTheGoroutinePath(t *testing.T) {
	h := newHarness(t, Config{})
	be := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "part one,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
		w.Header().Set("X-Sum", "17")
	})
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	for range 2 { // the second on the same, handed-over connection
		req, _ := http.NewRequest("POST", url(r), strings.NewReader("x"))
		req.Header.Set("Expect", "100-continue")
		res, body := h.send(req)
		if string(body) != "part one,part two" || res.Trailer.Get("X-Sum") != "17" {
			t.Fatalf("%q, trailer %v", body, res.Trailer)
		}
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &protos}, Timeout: testwait.For}
	defer h2.CloseIdleConnections()
	for range 2 { // and over HTTP/2, on the backend connection the first left
		res, err := h2.Post(url(r), "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "part one,part two" || res.Trailer.Get("X-Sum") != "17" {
			t.Fatalf("http2: %q, trailer %v", body, res.Trailer)
		}
	}
}

// TestRequestLeavesAReplicaThatDiedUnderIt: a replica killed while it
// holds a request resets its connections, and its address then swallows
// new ones (here: connections accepted and never answered; in Docker, a
// dead container's address drops their SYNs until it is back). The request goes
// to another replica at once, on every path, rather than to a new
// connection to the dead one (which waited for the response timeout).
func TestRequestLeavesAReplicaThatDiedUnderIt(t *testing.T) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &protos}, Timeout: 10 * time.Second}
	defer h2.CloseIdleConnections()
	for _, path := range []string{"loops", "fasthttp", "http2"} {
		t.Run(path, func(t *testing.T) {
			h := newHarness(t, Config{ResponseTimeout: 3 * time.Second})
			var died atomic.Bool
			gone := make(chan struct{})
			// The first request on a connection is answered; a second
			// kills the replica: connections reset, and new ones get no
			// answer.
			addr := rawServer(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if died.Load() {
						<-gone
						return
					}
					if n > 0 {
						died.Store(true)
						c.(*net.TCPConn).SetLinger(0)
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nweb/1")
				}
			})
			t.Cleanup(func() { close(gone) })
			slow := func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(20 * time.Millisecond) // costlier: web/1 gets the requests while it lives
				io.WriteString(w, "web/2")
			}
			r := routeOf(t, "web", HTTP,
				Backend{ID: "dies", Replica: "web/1", Addr: addr, Ready: true},
				backendServer(t, "web/2", slow))
			h.sync(r)
			for i := 0; i < 40 && !died.Load(); i++ {
				req, _ := http.NewRequest("GET", url(r), nil)
				start := time.Now()
				got := wait(t, sendAsync(h, h2, path, req), "the answer")
				if took := time.Since(start); got.code != 200 || took > time.Second {
					t.Fatalf("request %d: %+v after %s", i, got, took)
				}
				if died.Load() && got.body != "web/2" {
					t.Fatalf("request %d, which killed web/1: answered by %q", i, got.body)
				}
			}
			if !died.Load() {
				t.Fatal("web/1 never got a second request on a connection")
			}
		})
	}
}

// TestRetryWaitsForAnotherReplica: a GET whose replica dies under it
// while no other is ready (the others restarting) waits, within the hold,
// for one to be, on every path, instead of failing at once.
func TestRetryWaitsForAnotherReplica(t *testing.T) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &protos}, Timeout: 10 * time.Second}
	defer h2.CloseIdleConnections()
	for _, path := range []string{"loops", "fasthttp", "http2"} {
		t.Run(path, func(t *testing.T) {
			h := newFakeHarness(t, Config{Hold: 2 * time.Second})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			died := make(chan struct{})
			go func() {
				// web/1 dies with its first request: the connection is
				// reset and nothing listens any more.
				c, err := ln.Accept()
				ln.Close()
				if err != nil {
					return
				}
				http.ReadRequest(bufio.NewReader(c))
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				close(died)
			}()
			dying := Backend{ID: "dies", Replica: "web/1", Addr: mustAddrPort(ln.Addr()), Ready: true}
			web2 := backendServer(t, "web/2", named("web/2", nil))
			web2.Ready = false
			r := routeOf(t, "web", HTTP, dying, web2)
			h.sync(r)
			req, _ := http.NewRequest("GET", url(r), nil)
			res := sendAsync(h, h2, path, req)
			wait(t, died, "web/1 to die")
			h.held(r, 1)                                           // the retry waits for another replica
			h.clk.Advance(time.Second)                             // still within the hold
			r.Backends[0].Ready, r.Backends[1].Ready = false, true // web/2's readiness comes
			h.sync(r)
			if got := wait(t, res, "the answer"); got.code != 200 || got.body != "web/2" {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

// TestAbsoluteFormAndOddVersionsGoToNetHTTP: a request with an
// absolute-form target is answered (by the goroutine path, which reads
// the target's host as the request's), a malformed one is refused with a
// 400 and never reaches a backend.
func TestAbsoluteFormAndOddVersionsGoToNetHTTP(t *testing.T) {
	h := newHarness(t, Config{})
	var hits atomic.Int32
	be := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, r.URL.Path)
	})
	r := routeOf(t, "web", HTTP, be)
	h.sync(r)
	c, br := dialRoute(t, r)
	fmt.Fprintf(c, "GET http://%s/abs HTTP/1.1\r\nHost: elsewhere\r\n\r\n", r.Listen)
	if res, body := readAnswer(t, br, "GET"); res.StatusCode != 200 || body != "/abs" {
		t.Fatalf("absolute-form: %d %q, want 200 /abs", res.StatusCode, body)
	}
	before := hits.Load()
	for _, bad := range []string{
		"0 A://000#00000000 HTTP/1.1\r\nHost: x\r\n\r\n", // what FuzzLoopRequest found
		"GET http://a b/ HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c, br := dialRoute(t, r)
		io.WriteString(c, bad)
		if res, err := http.ReadResponse(br, nil); err == nil && res.StatusCode < 400 {
			t.Errorf("%q: %d, want a refusal", bad, res.StatusCode)
		}
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("%d malformed requests reached the backend's handler", n)
	}
	for _, rs := range h.m.Stats()[0].Replicas {
		if rs.Codes["4xx"] != 0 {
			t.Errorf("the backend was sent %d malformed requests (it answered 4xx)", rs.Codes["4xx"])
		}
	}
}
