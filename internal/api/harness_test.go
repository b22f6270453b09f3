package api_test

import (
	"context"
	"encoding/json"
	"github.com/tend-sh/tend/internal/testwait"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/access"
	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// waitFor bounds every wait of a test.
const waitFor = testwait.For

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Eventually(t, what, cond)
}

func checkGoroutines(t *testing.T, before int) { t.Helper(); testwait.Goroutines(t, before) }

// daemon is the API server with a supervisor over the fake runtime and a Bolt
// store, on a unix socket in a temporary directory. The supervisor runs on
// the real clock: Down polls on it while a DELETE is answered, and these
// tests need no backoff, so a fake clock would only have to be turned by hand.
type daemon struct {
	sock   string
	st     *store.Bolt
	rt     *fake.Fake
	client *api.Client
	raw    *http.Client
	srv    *api.Server
	tokens *access.Tokens
}

func startDaemon(t *testing.T) *daemon { return startDaemonLoop(t, true) }

// startDaemonLoop starts a daemon whose supervisor loop runs only if loop is
// set: without it, the store changes only by the requests a test makes.
func startDaemonLoop(t *testing.T, loop bool) *daemon {
	t.Helper()
	before := goruntime.NumGoroutine()
	dir := t.TempDir()
	d := &daemon{sock: filepath.Join(dir, "tend.sock"), rt: fake.New()}
	var err error
	if d.st, err = store.OpenBolt(store.BoltConfig{Path: filepath.Join(dir, "tend.db")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.st.Close() })
	l, err := api.Listen(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	if d.tokens, err = access.OpenTokens(filepath.Join(dir, "tokens.json")); err != nil {
		t.Fatal(err)
	}
	sup := supervisor.New(supervisor.Config{Runtime: d.rt, Store: d.st, Clock: clock.Real{}})
	srv := &api.Server{Supervisor: sup, Store: d.st, Log: slog.New(slog.DiscardHandler), Version: "test", Tokens: d.tokens}
	d.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	running := 1
	if loop {
		running++
		go func() { errc <- sup.Run(ctx) }()
	}
	go func() { errc <- srv.Serve(ctx, l) }()
	d.client = api.NewClient(d.sock)
	d.raw = rawClient(d.sock)
	t.Cleanup(func() {
		cancel()
		for range running {
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("daemon stopped with %v", err)
				}
			case <-time.After(waitFor):
				t.Fatal("daemon did not stop")
			}
		}
		d.raw.CloseIdleConnections()
		checkGoroutines(t, before)
	})
	return d
}

// rawClient is a plain HTTP client on the socket, for what api.Client does not send.
func rawClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

// request sends a raw request and returns the status and body.
func (d *daemon) request(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://tend"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := d.raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// project is "demo": api×1 and web×2 on the default network.
func project() spec.Project {
	svc := func(name string, n int) spec.Service {
		return spec.Service{
			Name: name, Image: name + ":dev", Replicas: n,
			Networks: []spec.NetworkAttach{{Network: "default"}},
			Restart:  spec.RestartPolicy{Condition: spec.RestartAny},
			Tend: spec.Extension{Backoff: spec.Backoff{
				Initial: 500 * time.Millisecond, Max: 10 * time.Second, ResetAfter: 10 * time.Second,
			}},
		}
	}
	return spec.Project{
		Name:     "demo",
		Services: []spec.Service{svc("api", 1), svc("web", 2)},
		Networks: []spec.Network{{Key: "default", Name: "demo_default"}},
	}
}

func projectJSON(t *testing.T, p spec.Project) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// actions lists the actions of entries, in order.
func actions(es []store.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Action)
	}
	return out
}

// events reads the journal through the client, without following.
func (d *daemon) events(t *testing.T, q store.Query) []store.Entry {
	t.Helper()
	var es []store.Entry
	err := d.client.Events(t.Context(), q, false, func(e store.Entry) error {
		es = append(es, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
