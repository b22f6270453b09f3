package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's writer and the test's reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestServer(t *testing.T) (*server, *syncBuffer, *httptest.Server) {
	t.Helper()
	out := &syncBuffer{}
	s := newServer("web", "host-1", out)
	ts := httptest.NewServer(s.routes())
	t.Cleanup(ts.Close)
	return s, out, ts
}

func do(t *testing.T, ts *httptest.Server, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(body)
}

func TestIndex(t *testing.T) {
	s, _, ts := newTestServer(t)
	code, body := do(t, ts, "GET", "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", code)
	}
	var got info
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("GET / body %q: %v", body, err)
	}
	if got.Name != "web" || got.Hostname != "host-1" || got.Instance != s.instance || got.PID != s.pid {
		t.Errorf("GET / = %+v", got)
	}
	if len(got.Instance) != 16 {
		t.Errorf("instance %q: want 16 hex digits", got.Instance)
	}
	if started, err := time.Parse(time.RFC3339Nano, got.Started); err != nil || !started.Equal(s.started) {
		t.Errorf("started %q: %v", got.Started, err)
	}
	if other := newServer("web", "host-1", io.Discard); other.instance == s.instance {
		t.Errorf("two servers share instance %q", s.instance)
	}
}

func TestSickAndHeal(t *testing.T) {
	_, _, ts := newTestServer(t)
	steps := []struct {
		method, path string
		wantCode     int
		wantBody     string
	}{
		{"GET", "/health", 200, "ok"},
		{"POST", "/sick", 200, "sick"},
		{"GET", "/health", 503, "sick"},
		{"GET", "/", 200, ""}, // sick affects /health only
		{"POST", "/fail", 200, "failing"},
		{"GET", "/", 500, "failing"},
		{"GET", "/health", 503, "sick"},
		{"POST", "/fail?code=503", 200, "failing"},
		{"PUT", "/", 503, "failing"},
		{"POST", "/fail?code=200", 400, ""},
		{"POST", "/heal", 200, "ok"},
		{"PUT", "/", 200, ""},
		{"GET", "/health", 200, "ok"},
		{"GET", "/", 200, ""},
	}
	for _, st := range steps {
		code, body := do(t, ts, st.method, st.path)
		if code != st.wantCode || (st.wantBody != "" && body != st.wantBody) {
			t.Fatalf("%s %s = %d %q, want %d %q", st.method, st.path, code, body, st.wantCode, st.wantBody)
		}
	}
}

func TestSlow(t *testing.T) {
	s, _, ts := newTestServer(t)
	if code, body := do(t, ts, "POST", "/slow?ms=150"); code != 200 {
		t.Fatalf("POST /slow = %d %q", code, body)
	}
	if got := time.Duration(s.slow.Load()); got != 150*time.Millisecond {
		t.Fatalf("slow = %v, want 150ms", got)
	}
	for _, path := range []string{"/", "/health"} {
		start := time.Now()
		if code, _ := do(t, ts, "GET", path); code != 200 {
			t.Fatalf("GET %s = %d", path, code)
		}
		if took := time.Since(start); took < 150*time.Millisecond {
			t.Errorf("GET %s took %v, want at least 150ms", path, took)
		}
	}
	if code, _ := do(t, ts, "POST", "/heal"); code != 200 {
		t.Fatalf("POST /heal = %d", code)
	}
	if got := s.slow.Load(); got != 0 {
		t.Errorf("slow after heal = %v, want 0", time.Duration(got))
	}
}

func TestSlowBadMs(t *testing.T) {
	_, _, ts := newTestServer(t)
	for _, q := range []string{"", "?ms=", "?ms=abc", "?ms=-1", "?ms=1.5", "?ms=600001"} {
		if code, body := do(t, ts, "POST", "/slow"+q); code != http.StatusBadRequest {
			t.Errorf("POST /slow%s = %d %q, want 400", q, code, body)
		}
	}
	if code, _ := do(t, ts, "POST", "/slow?ms=0"); code != 200 {
		t.Errorf("POST /slow?ms=0 = %d, want 200", code)
	}
}

func TestLog(t *testing.T) {
	_, out, ts := newTestServer(t)
	if code, _ := do(t, ts, "POST", "/log?line=FATAL+disk+on+fire"); code != 200 {
		t.Fatalf("POST /log = %d", code)
	}
	if code, _ := do(t, ts, "POST", "/log?line=two%0Alines"); code != 200 {
		t.Fatalf("POST /log = %d", code)
	}
	if code, _ := do(t, ts, "POST", "/log"); code != http.StatusBadRequest {
		t.Errorf("POST /log without line = %d, want 400", code)
	}
	if got, want := out.String(), "FATAL disk on fire\ntwo lines\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

func TestFlood(t *testing.T) {
	_, out, ts := newTestServer(t)
	if code, _ := do(t, ts, "POST", "/flood?mb=1&line=FATAL+after+flood"); code != 200 {
		t.Fatalf("POST /flood = %d", code)
	}
	got := out.String()
	if len(got) < 1<<20 || !strings.HasSuffix(got, "\nFATAL after flood\n") || !strings.HasPrefix(got, "INFO filler line 00000000 x") {
		t.Errorf("stdout: %d bytes, starting %q, ending %q", len(got), got[:min(40, len(got))], got[max(0, len(got)-40):])
	}
	for _, q := range []string{"", "?mb=0", "?mb=x", "?mb=1025"} {
		if code, _ := do(t, ts, "POST", "/flood"+q); code != http.StatusBadRequest {
			t.Errorf("POST /flood%s = %d, want 400", q, code)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	_, _, ts := newTestServer(t)
	cases := []struct{ method, path string }{
		{"POST", "/"},
		{"DELETE", "/health"},
		{"GET", "/crash"},
		{"GET", "/sick"},
		{"GET", "/slow?ms=5"},
		{"GET", "/heal"},
		{"GET", "/log?line=x"},
	}
	for _, c := range cases {
		if code, _ := do(t, ts, c.method, c.path); code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 405", c.method, c.path, code)
		}
	}
	if code, _ := do(t, ts, "GET", "/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", code)
	}
}

// TestCrash replaces exit, so it must not run in parallel with other tests.
func TestCrash(t *testing.T) {
	codes := make(chan int, 1)
	saved := exit
	exit = func(code int) { codes <- code }
	t.Cleanup(func() { exit = saved })

	_, out, ts := newTestServer(t)
	start := time.Now()
	code, body := do(t, ts, "POST", "/crash")
	if code != http.StatusAccepted || body != "crashing" {
		t.Fatalf("POST /crash = %d %q, want 202 \"crashing\"", code, body)
	}
	select {
	case got := <-codes:
		if got != 1 {
			t.Errorf("exit status %d, want 1", got)
		}
		if took := time.Since(start); took < crashDelay {
			t.Errorf("exited after %v, before the %v grace", took, crashDelay)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exit was not called")
	}
	if !strings.Contains(out.String(), "crashing") {
		t.Errorf("stdout %q: want a crash line", out.String())
	}
}

func TestProbe(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/sick":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/hang":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) })

	cases := []struct {
		name     string
		url      string
		wantCode int
		wantOut  string
	}{
		{"2xx", ts.URL + "/ok", 0, "204 No Content"},
		{"5xx", ts.URL + "/sick", 1, "503 Service Unavailable"},
		{"timeout", ts.URL + "/hang", 1, "Timeout"},
		{"refused", "http://127.0.0.1:1/health", 1, "refused"},
		{"bad url", "::nope", 1, "probe ::nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(context.Background(), []string{"-probe", c.url, "-timeout", "200ms"}, &out, io.Discard)
			if code != c.wantCode || !strings.Contains(out.String(), c.wantOut) {
				t.Errorf("probe %s = %d %q, want %d and output containing %q", c.url, code, out.String(), c.wantCode, c.wantOut)
			}
		})
	}
}

func TestJob(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		cancel   bool
		wantCode int
		wantOut  string
	}{
		{"success", []string{"-name", "migrate", "-exit-after", "10ms", "-exit-code", "0"}, false, 0, "demo migrate job: done\n"},
		{"failure", []string{"-exit-after", "1ms", "-exit-code", "3"}, false, 3, "done"},
		{"interrupted", []string{"-exit-after", "1h"}, true, 143, "interrupted"},
		{"bad code", []string{"-exit-after", "1ms", "-exit-code", "256"}, false, 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.cancel {
				cancel()
			}
			var out bytes.Buffer
			if code := run(ctx, c.args, &out, io.Discard); code != c.wantCode || !strings.Contains(out.String(), c.wantOut) {
				t.Errorf("run %v = %d %q, want %d and output containing %q", c.args, code, out.String(), c.wantCode, c.wantOut)
			}
		})
	}
}

func TestServeShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-name", "api"}, out, io.Discard)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "listening") {
		if time.Now().After(deadline) {
			t.Fatalf("no startup line; stdout %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.HasPrefix(out.String(), "demo api listening on 127.0.0.1:") || strings.Contains(out.String(), ":0 ") {
		t.Errorf("startup line %q", out.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit status %d after shutdown, want 0", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-exit-after", "soon"}} {
		if code := run(context.Background(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("run %v = %d, want 2", args, code)
		}
	}
}

func TestWebSocketEcho(t *testing.T) {
	_, _, ts := newTestServer(t)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/ws", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// RFC 6455's example key and its answer.
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	rw, ok := resp.Body.(io.ReadWriter)
	if !ok {
		t.Fatal("101 response body is not writable")
	}
	msg := "hi"
	frame := []byte{0x81, 0x80 | byte(len(msg)), 9, 8, 7, 6}
	for i := range len(msg) {
		frame = append(frame, msg[i]^[]byte{9, 8, 7, 6}[i%4])
	}
	if _, err := rw.Write(frame); err != nil {
		t.Fatal(err)
	}
	h := make([]byte, 2)
	if _, err := io.ReadFull(rw, h); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, h[1]&0x7f)
	if _, err := io.ReadFull(rw, p); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(p), ": hi") || h[0] != 0x81 {
		t.Errorf("echo: %x %q", h, p)
	}
	if code, _ := do(t, ts, "GET", "/ws"); code != http.StatusBadRequest {
		t.Errorf("GET /ws without an upgrade = %d, want 400", code)
	}
}

func TestGreet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- greet(ctx, addr, "mail", io.Discard) }()
	var c net.Conn
	for range 100 {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if l, err := br.ReadString('\n'); err != nil || l != "220 mail ready\r\n" {
		t.Fatalf("greeting %q %v", l, err)
	}
	fmt.Fprintf(c, "HELO x\r\n")
	if l, err := br.ReadString('\n'); err != nil || l != "mail: HELO x\r\n" {
		t.Fatalf("answer %q %v", l, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
}
