package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

func buildRequest() supervisor.BuildRequest {
	return supervisor.BuildRequest{Project: "demo", Service: "web", Image: "demo-web",
		Build: spec.Build{Context: "/src/web", Dockerfile: "Dockerfile"}}
}

// lines records each write as one line.
type lines struct {
	mu    sync.Mutex
	got   []string
	first chan struct{} // closed at the first write
}

func newLines() *lines { return &lines{first: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) == 0 {
		close(l.first)
	}
	l.got = append(l.got, string(p))
	return len(p), nil
}

func TestBuildStreams(t *testing.T) {
	d := startDaemonLoop(t, false)
	out := newLines()
	res, err := d.client.Build(t.Context(), buildRequest(), out)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Built || res.ID != "sha256:fake00000001" {
		t.Errorf("result %+v", res)
	}
	if want := []string{"Step 1/2 : FROM scratch\n", "Step 2/2 : LABEL image=demo-web\n"}; strings.Join(out.got, "|") != strings.Join(want, "|") {
		t.Errorf("output %q, want %q", out.got, want)
	}

	// The image exists now: without Always it is found, not built, and nothing streams.
	out = newLines()
	if res, err := d.client.Build(t.Context(), buildRequest(), out); err != nil || res.Built || res.ID != "sha256:fake00000001" {
		t.Errorf("second build: %+v, %v; want the existing image", res, err)
	}
	if len(out.got) != 0 {
		t.Errorf("output of a build not run: %q", out.got)
	}

	// On the wire: one JSON object per line, the result last.
	req := buildRequest()
	req.Always = true
	resp, body := d.request(t, http.MethodPost, "/v1/build", mustJSON(t, req))
	want := `{"stream":"Step 1/2 : FROM scratch\n"}` + "\n" +
		`{"stream":"Step 2/2 : LABEL image=demo-web\n"}` + "\n" +
		`{"image":{"id":"sha256:fake00000002","built":true}}` + "\n"
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" || body != want {
		t.Errorf("answer %s %s:\n%s\nwant\n%s", resp.Status, resp.Header.Get("Content-Type"), body, want)
	}
	es := d.events(t, store.Query{Project: "demo"})
	if got := actions(es); strings.Join(got, ",") != "build,build" || es[0].Reason != "missing" || es[1].Reason != "requested" {
		t.Errorf("journal %+v, want two builds", es)
	}
}

func TestBuildFailureStreamsThenErrs(t *testing.T) {
	d := startDaemonLoop(t, false)
	d.rt.FailNext(fake.MethodBuild, &runtime.BuildError{Step: "2/2 : COPY app /app", Message: "COPY failed: no such file"})
	out := newLines()
	_, err := d.client.Build(t.Context(), buildRequest(), out)
	want := `service "web": build: step 2/2 (COPY app /app): COPY failed: no such file`
	if err == nil || err.Error() != want || errs.KindOf(err) != errs.Invalid {
		t.Errorf("error %v (kind %s), want invalid: %s", err, errs.KindOf(err), want)
	}
	if len(out.got) != 1 || out.got[0] != "Step 1/2 : FROM scratch\n" {
		t.Errorf("output before the failure: %q", out.got)
	}
}

func TestBuildErrorsBeforeOutput(t *testing.T) {
	d := startDaemonLoop(t, false)
	noImage := buildRequest()
	noImage.Image = ""
	d.rt.FailNext(fake.MethodImageID, errs.E(errs.Unavailable, "fake: engine down"))
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"engine unavailable", mustJSON(t, buildRequest()), http.StatusServiceUnavailable,
			`{"error":"fake: engine down","kind":"unavailable"}`},
		{"unknown field", `{"project":"demo","bogus":1}`, http.StatusBadRequest,
			`{"error":"request body is not a build request: json: unknown field \"bogus\"","kind":"invalid"}`},
		{"no image", mustJSON(t, noImage), http.StatusBadRequest,
			`{"error":"build: service \"web\": no image to tag","kind":"invalid"}`},
		{"wrong method", "", http.StatusNotFound, `{"error":"no such endpoint: GET /v1/build","kind":"not-found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodPost
			if tt.body == "" {
				method = http.MethodGet
			}
			resp, body := d.request(t, method, "/v1/build", tt.body)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" || body != tt.want+"\n" {
				t.Errorf("answer %s %s %s, want %d %s", resp.Status, resp.Header.Get("Content-Type"), body, tt.status, tt.want)
			}
		})
	}
}

// gatedBuilder builds like the fake but holds a build after its first line
// until release is closed, so a test can see output arrive before the end.
type gatedBuilder struct {
	*fake.Fake
	release chan struct{}
}

func (g gatedBuilder) Build(ctx context.Context, image string, b spec.Build, progress io.Writer) (string, error) {
	io.WriteString(progress, "Step 1/2 : FROM scratch\n")
	select {
	case <-g.release:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return g.Fake.Build(ctx, image, b, io.Discard)
}

func TestBuildOutputArrivesAsItComes(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(dir, "tend.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sock := filepath.Join(dir, "tend.sock")
	l, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	rt := gatedBuilder{Fake: fake.New(), release: make(chan struct{})}
	sup := supervisor.New(supervisor.Config{Runtime: rt, Store: st, Clock: clock.Real{}})
	srv := &api.Server{Supervisor: sup, Store: st, Log: slog.New(slog.DiscardHandler), Version: "test"}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()

	out := newLines()
	done := make(chan error, 1)
	go func() {
		_, err := api.NewClient(sock).Build(ctx, buildRequest(), out)
		done <- err
	}()
	select {
	case <-out.first:
	case <-time.After(waitFor):
		t.Fatal("no output while the build runs")
	}
	close(rt.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
