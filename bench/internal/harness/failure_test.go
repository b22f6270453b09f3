package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve answers each connection on a loopback listener with handle.
func serve(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return "http://" + l.Addr().String()
}

// rawServer answers each connection with do, after reading the request's head.
func rawServer(t *testing.T, do func(c *net.TCPConn)) string {
	t.Helper()
	return serve(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		do(c.(*net.TCPConn))
	})
}

// http1Only answers h2c in HTTP/1 as a server that does not speak HTTP/2 does, but
// only once the client's request (its HEADERS frame) has arrived: answering at once,
// as httptest's server may, races the client's first stream, and net/http then names
// the failure "could not be established" instead (seen in CI on 2026-12-07).
func http1Only(t *testing.T) string {
	t.Helper()
	return serve(t, func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		if _, err := io.ReadFull(r, make([]byte, 24)); err != nil { // the client preface
			return
		}
		head := make([]byte, 9)
		for {
			if _, err := io.ReadFull(r, head); err != nil {
				return
			}
			n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
			if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
				return
			}
			if head[3] == 0x1 { // HEADERS: the request is in
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
	})
}

// TestFailureKindOfRealFailures makes each failure happen on loopback and checks the
// name Send's error gets: the errors are net/http's own, not made up.
func TestFailureKindOfRealFailures(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		return "http://" + l.Addr().String()
	}()
	reset := rawServer(t, func(c *net.TCPConn) { c.SetLinger(0); c.Close() })
	eof := rawServer(t, func(c *net.TCPConn) { c.Close() })
	half := rawServer(t, func(c *net.TCPConn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
		c.Close()
	})
	hang := rawServer(t, func(c *net.TCPConn) { time.Sleep(2 * time.Second); c.Close() })
	status := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer status.Close()
	http1only := http1Only(t)

	for _, c := range []struct {
		name, url string
		kind      ClientKind
		want      string
	}{
		{"refused", closed, KeepAlive, FailRefused},
		{"reset before answering", reset, KeepAlive, FailReset},
		{"closed before answering", eof, Fresh, FailEOF},
		{"answer cut short", half, KeepAlive, FailEOF},
		{"no answer in time", hang, KeepAlive, FailTimeout},
		{"5xx", status.URL, KeepAlive, "HTTP 502"},
		{"h2c to an HTTP/1-only server", http1only, H2C, FailH2NotSpoken},
	} {
		t.Run(c.name, func(t *testing.T) {
			hc := &http.Client{Transport: transport(c.kind), Timeout: 300 * time.Millisecond}
			err := Send(context.Background(), hc, http.MethodGet, c.url+"/")
			if err == nil {
				t.Fatal("no error")
			}
			if got := FailureKind(err); got != c.want {
				t.Errorf("FailureKind(%v) = %q, want %q", err, got, c.want)
			}
		})
	}
}

func TestFailureKindByText(t *testing.T) {
	wrap := func(msg string) error {
		return &url.Error{Op: "Get", URL: "http://127.0.0.1:18301/", Err: errors.New(msg)}
	}
	for msg, want := range map[string]string{
		"stream error: stream ID 3; INTERNAL_ERROR; received from peer":       FailH2Stream,
		"http2: server sent GOAWAY and closed the connection; LastStreamID=1": FailH2Conn,
		"http2: client connection lost":                                       FailH2Conn,
		"http2: client conn could not be established":                         FailH2NoConn,
		"net/http: HTTP/1.x transport connection broken: unexpected EOF":      FailEOF,
		"dial tcp 172.20.0.2:8080: i/o trouble":                               "other: dial tcp ADDR: i/o trouble",
	} {
		if got := FailureKind(wrap(msg)); got != want {
			t.Errorf("FailureKind(%q) = %q, want %q", msg, got, want)
		}
	}
	if got := FailureKind(fmt.Errorf("x: %w", StatusError(503))); got != "HTTP 503" {
		t.Errorf("wrapped 503: %q", got)
	}
}

func TestTallyLine(t *testing.T) {
	n := Tally{}
	if n.Line() != "-" || n.Sum() != 0 {
		t.Errorf("empty: %q %d", n.Line(), n.Sum())
	}
	n.Add(FailReset, 2)
	n.Add("HTTP 502", 5)
	n.Add(FailEOF, 2)
	n.Add(FailTimeout, 0)
	if got, want := n.Line(), "5 HTTP 502, 2 EOF, 2 reset"; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
	if n.Sum() != 9 {
		t.Errorf("Sum = %d", n.Sum())
	}
}

func TestParseClientKinds(t *testing.T) {
	ks, err := ParseClientKinds("fresh, keepalive,fresh")
	if err != nil || len(ks) != 2 || ks[0] != Fresh || ks[1] != KeepAlive {
		t.Errorf("ParseClientKinds = %v, %v", ks, err)
	}
	if _, err := ParseClientKinds("keepalive,h3"); err == nil || !strings.Contains(err.Error(), `"h3"`) {
		t.Errorf("unknown kind: %v", err)
	}
}

// TestLoadSendsEachKindAndCountsPosts runs a short load against a local server that
// speaks HTTP/1.1 and h2c and fails every POST with 503.
func TestLoadSendsEachKindAndCountsPosts(t *testing.T) {
	var mu sync.Mutex
	conns, protos := map[string]bool{}, map[string]int{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.Proto]++
		mu.Unlock()
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns[c.RemoteAddr().String()] = true
			mu.Unlock()
		}
	}
	srv.Start()
	l := Load{
		Kinds: ClientKinds, Clients: 1,
		Base:    func(ClientKind) string { return srv.URL },
		GetPath: "/", PostPath: "/post", PostEvery: 4,
		Timeout: time.Second, For: 100 * time.Millisecond,
	}
	rs := l.Run(context.Background(), time.Now())
	srv.Close()
	by, ids := map[ClientKind]int{}, map[int]ClientKind{}
	for _, r := range rs {
		by[r.Client]++
		if k, ok := ids[r.ID]; ok && k != r.Client {
			t.Fatalf("client %d sent both %s and %s", r.ID, k, r.Client)
		}
		ids[r.ID] = r.Client
		switch {
		case r.Post && r.Fail != "HTTP 503", !r.Post && r.Fail != "":
			t.Fatalf("request %+v", r)
		}
	}
	for _, k := range ClientKinds {
		if by[k] < 8 {
			t.Errorf("%s: %d requests in 100 ms", k, by[k])
		}
	}
	if len(ids) != 3 {
		t.Errorf("%d clients, want 3", len(ids))
	}
	if protos["HTTP/2.0"] == 0 || protos["HTTP/1.1"] == 0 {
		t.Errorf("protocols seen: %v", protos)
	}
	// keep-alive and h2c: one connection each; fresh: one per request.
	if len(conns) < by[Fresh]+2 {
		t.Errorf("%d connections for %d fresh requests", len(conns), by[Fresh])
	}
}

// TestRunWhileWaitsForBoth: the load runs while during does, and the run lasts until
// both are done.
func TestRunWhileWaitsForBoth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	l := Load{Kinds: []ClientKind{KeepAlive}, Clients: 2, Base: func(ClientKind) string { return srv.URL },
		GetPath: "/", Timeout: time.Second, For: 50 * time.Millisecond}
	var during time.Duration
	run := l.RunWhile(context.Background(), nil, func(start time.Time) {
		time.Sleep(100 * time.Millisecond)
		during = time.Since(start)
	})
	if len(run.Requests) == 0 || run.AllDown != nil {
		t.Errorf("%d requests, all down %v", len(run.Requests), run.AllDown)
	}
	if during < 100*time.Millisecond || run.Elapsed < during {
		t.Errorf("during took %v, the run %v", during, run.Elapsed)
	}
	for _, r := range run.Requests {
		if r.From > l.For {
			t.Errorf("a request sent at %v, after the load's %v", r.From, l.For)
		}
	}
}
