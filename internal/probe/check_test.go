package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

func TestHTTPCheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/sick", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("sick"))
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/starting", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("starting up")) })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"state":"ready"}`)) })
	mux.HandleFunc("/late", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("a", 64<<10) + "ready"))
	})
	mux.HandleFunc("/chatty", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("panic: boom\n\n\tgoroutine 1:\r\n" + strings.Repeat("frame ", 100)))
	})
	var followed atomic.Bool
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/target", http.StatusFound) })
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) { followed.Store(true) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	port := portOf(t, srv.Listener)

	tests := []struct {
		name     string
		path     string
		min, max int
		body     string
		ok       bool
		output   string // the whole output, unless prefix
		prefix   bool
	}{
		{name: "status in range", path: "/ok", min: 200, max: 399, ok: true, output: "HTTP 200: ok"},
		{name: "status above range", path: "/sick", min: 200, max: 399, output: "HTTP 503: sick"},
		{name: "range that takes 503", path: "/sick", min: 500, max: 503, ok: true, output: "HTTP 503: sick"},
		{name: "status below range", path: "/empty", min: 205, max: 299, output: "HTTP 204"},
		{name: "redirect is an answer", path: "/moved", min: 200, max: 399, ok: true, output: "HTTP 302", prefix: true},
		{name: "redirect outside range fails", path: "/moved", min: 200, max: 299, output: "HTTP 302", prefix: true},
		{name: "body contains wanted", path: "/ready", min: 200, max: 299, body: "ready", ok: true, output: `HTTP 200: {"state":"ready"}`},
		{name: "body lacks wanted", path: "/starting", min: 200, max: 299, body: "ready", output: `HTTP 200 (body lacks "ready"): starting up`},
		{name: "body is searched in its first 64 KiB only", path: "/late", min: 200, max: 299, body: "ready", output: `HTTP 200 (body lacks "ready"): aaa`, prefix: true},
		{name: "wanted body does not rescue a bad status", path: "/sick", min: 200, max: 299, body: "sick", output: "HTTP 503: sick"},
		{name: "long body folded onto one line", path: "/chatty", min: 200, max: 299, output: "HTTP 500: panic: boom goroutine 1: frame frame", prefix: true},
		{name: "unknown path", path: "/nope", min: 200, max: 299, output: "HTTP 404: 404 page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &spec.Probe{Timeout: 2 * time.Second, HTTP: &spec.HTTPCheck{Port: port, Path: tt.path, StatusMin: tt.min, StatusMax: tt.max, Body: tt.body}}
			r := Check(context.Background(), p, Target{ID: "c1", IP: "127.0.0.1"}, nil)
			if r.OK != tt.ok {
				t.Errorf("OK = %v, want %v (output %q)", r.OK, tt.ok, r.Output)
			}
			if got := r.Output; got != tt.output && !(tt.prefix && strings.HasPrefix(got, tt.output)) {
				t.Errorf("output = %q, want %q", got, tt.output)
			}
			if len(r.Output) > len("HTTP 500: ")+outputLimit+len(` (body lacks "ready")`) || strings.ContainsAny(r.Output, "\r\n\t") {
				t.Errorf("output is not one short line: %q", r.Output)
			}
			if r.At.IsZero() || r.Took <= 0 {
				t.Errorf("At = %v, Took = %v: want both set", r.At, r.Took)
			}
		})
	}
	if followed.Load() {
		t.Error("a redirect was followed")
	}
}

func TestHTTPCheckSendsHeadersAndHost(t *testing.T) {
	type seen struct{ host, token, agent, uri string }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.Header.Get("X-Token"), r.Header.Get("User-Agent"), r.RequestURI}
	}))
	defer srv.Close()
	p := &spec.Probe{Timeout: 2 * time.Second, HTTP: &spec.HTTPCheck{
		Port: portOf(t, srv.Listener), Path: "/healthz?deep=1", StatusMin: 200, StatusMax: 299,
		Headers: map[string]string{"host": "web.internal", "X-Token": "s3cret"},
	}}
	if r := Check(context.Background(), p, Target{IP: "127.0.0.1"}, nil); !r.OK {
		t.Fatalf("check failed: %s", r.Output)
	}
	want := seen{host: "web.internal", token: "s3cret", agent: "tend-probe", uri: "/healthz?deep=1"}
	if s := <-got; s != want {
		t.Errorf("server saw %+v, want %+v", s, want)
	}
}

// Each check dials afresh, so a process that died is not hidden behind a
// pooled connection.
func TestHTTPCheckDoesNotReuseConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := &spec.Probe{Timeout: 2 * time.Second, HTTP: &spec.HTTPCheck{Port: portOf(t, srv.Listener), Path: "/", StatusMin: 200, StatusMax: 299}}
	for range 3 {
		if r := Check(context.Background(), p, Target{IP: "127.0.0.1"}, nil); !r.OK {
			t.Fatalf("check failed: %s", r.Output)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 checks made %d connections, want 3", n)
	}
}

func TestHTTPCheckTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p := &spec.Probe{Timeout: 100 * time.Millisecond, HTTP: &spec.HTTPCheck{Port: portOf(t, srv.Listener), Path: "/", StatusMin: 200, StatusMax: 299}}
	r := Check(context.Background(), p, Target{IP: "127.0.0.1"}, nil)
	if r.OK || r.Output != "timeout after 100ms" {
		t.Errorf("got OK=%v %q, want a failure %q", r.OK, r.Output, "timeout after 100ms")
	}
	if r.Took < 100*time.Millisecond || r.Took > time.Second {
		t.Errorf("took %s, want about the 100ms timeout", r.Took)
	}
}

func TestClosedPort(t *testing.T) {
	port := closedPort(t)
	for name, p := range map[string]*spec.Probe{
		"http": {HTTP: &spec.HTTPCheck{Port: port, Path: "/", StatusMin: 200, StatusMax: 299}},
		"tcp":  {TCP: &spec.TCPCheck{Port: port}},
	} {
		t.Run(name, func(t *testing.T) {
			p.Timeout = 2 * time.Second
			r := Check(context.Background(), p, Target{IP: "127.0.0.1"}, nil)
			want := "dial tcp 127.0.0.1:" + strconv.Itoa(int(port)) + ": "
			if r.OK || !strings.HasPrefix(r.Output, want) || !strings.HasSuffix(r.Output, "connection refused") {
				t.Errorf("got OK=%v %q, want a refused dial %q...", r.OK, r.Output, want)
			}
		})
	}
}

func TestTCPCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			close(accepted)
		}
	}()
	p := &spec.Probe{Timeout: 2 * time.Second, TCP: &spec.TCPCheck{Port: portOf(t, ln)}}
	r := Check(context.Background(), p, Target{IP: "127.0.0.1"}, nil)
	if !r.OK || r.Output != "connected" {
		t.Errorf("got OK=%v %q, want connected", r.OK, r.Output)
	}
	<-accepted
}

func TestCheckWithoutAddress(t *testing.T) {
	exec := &fakeExec{}
	for name, p := range map[string]*spec.Probe{
		"http": {HTTP: &spec.HTTPCheck{Port: 80, Path: "/", StatusMin: 200, StatusMax: 299}},
		"tcp":  {TCP: &spec.TCPCheck{Port: 80}},
	} {
		t.Run(name, func(t *testing.T) {
			r := Check(context.Background(), p, Target{ID: "c1"}, exec)
			if r.OK || r.Output != noAddress {
				t.Errorf("got OK=%v %q, want %q", r.OK, r.Output, noAddress)
			}
		})
	}
	t.Run("exec needs none", func(t *testing.T) {
		if r := Check(context.Background(), &spec.Probe{Exec: []string{"true"}}, Target{ID: "c1"}, exec); !r.OK {
			t.Errorf("exec check without an address failed: %q", r.Output)
		}
	})
}

func TestExecCheck(t *testing.T) {
	tests := []struct {
		name   string
		res    runtime.ExecResult
		err    error
		ok     bool
		output string
	}{
		{name: "exit 0 passes", res: runtime.ExecResult{Output: "ok\n"}, ok: true, output: "exit 0: ok"},
		{name: "exit 0 silent", ok: true, output: "exit 0"},
		{name: "exit 1 fails", res: runtime.ExecResult{ExitCode: 1, Output: "  db down\nretrying\n"}, output: "exit 1: db down retrying"},
		{name: "output clipped", res: runtime.ExecResult{ExitCode: 2, Output: strings.Repeat("é", 300)}, output: "exit 2: " + strings.Repeat("é", 98) + "..."},
		{name: "exec error", err: errors.New("container c1 is not running"), output: "container c1 is not running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exec := &fakeExec{fn: func(context.Context) (runtime.ExecResult, error) { return tt.res, tt.err }}
			p := &spec.Probe{Timeout: time.Second, Exec: []string{"/app", "-check"}}
			r := Check(context.Background(), p, Target{ID: "c1", IP: "10.0.0.2"}, exec)
			if r.OK != tt.ok || r.Output != tt.output {
				t.Errorf("got OK=%v %q, want OK=%v %q", r.OK, r.Output, tt.ok, tt.output)
			}
			calls := exec.calls()
			if len(calls) != 1 || calls[0] != "c1: /app -check" {
				t.Errorf("exec calls = %q, want one in c1 of /app -check", calls)
			}
		})
	}
}

func TestExecCheckTimeout(t *testing.T) {
	exec := &fakeExec{fn: func(ctx context.Context) (runtime.ExecResult, error) {
		<-ctx.Done()
		return runtime.ExecResult{}, ctx.Err()
	}}
	r := Check(context.Background(), &spec.Probe{Timeout: 50 * time.Millisecond, Exec: []string{"sleep", "9"}}, Target{ID: "c1"}, exec)
	if r.OK || r.Output != "timeout after 50ms" {
		t.Errorf("got OK=%v %q, want a failure %q", r.OK, r.Output, "timeout after 50ms")
	}
}

func TestExecCheckWithoutExecer(t *testing.T) {
	r := Check(context.Background(), &spec.Probe{Timeout: time.Second, Exec: []string{"true"}}, Target{ID: "c1"}, nil)
	if r.OK || !strings.Contains(r.Output, "no runtime") {
		t.Errorf("got OK=%v %q, want a failure naming the missing runtime", r.OK, r.Output)
	}
}

// fakeExec is the package's one fake Execer: it records the commands it is
// asked to run and answers with fn (exit 0 when fn is nil).
type fakeExec struct {
	fn  func(ctx context.Context) (runtime.ExecResult, error)
	mu  sync.Mutex
	got []string
}

func (f *fakeExec) Exec(ctx context.Context, id string, cmd []string) (runtime.ExecResult, error) {
	f.mu.Lock()
	f.got = append(f.got, id+": "+strings.Join(cmd, " "))
	f.mu.Unlock()
	if f.fn == nil {
		return runtime.ExecResult{}, nil
	}
	return f.fn(ctx)
}

func (f *fakeExec) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func portOf(t *testing.T, ln net.Listener) uint16 {
	t.Helper()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// closedPort is a local port that was just free: nothing listens on it.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := portOf(t, ln)
	ln.Close()
	return port
}

func TestCheckWithoutProbe(t *testing.T) {
	if r := Check(context.Background(), nil, Target{ID: "c1", IP: "127.0.0.1"}, nil); r.OK || r.Output != "no probe to check" {
		t.Errorf("got OK=%v %q, want a failure", r.OK, r.Output)
	}
	if r := Check(context.Background(), &spec.Probe{}, Target{ID: "c1", IP: "127.0.0.1"}, nil); r.OK || !strings.Contains(r.Output, "no check") {
		t.Errorf("empty probe: got OK=%v %q, want a failure", r.OK, r.Output)
	}
}
