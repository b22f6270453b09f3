package docker

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// Streams recorded from Docker 20.10's classic builder.
const (
	streamBuilt = `{"stream":"Step 1/3 : FROM tend-demo:dev"}
{"stream":"\n"}
{"stream":" ---\u003e c4323b264230\n"}
{"stream":"Step 2/3 : ARG NAME=x"}
{"stream":"\n"}
{"stream":" ---\u003e Running in e034452f90dd\n"}
{"stream":"Removing intermediate container e034452f90dd\n"}
{"stream":" ---\u003e 681f75130f34\n"}
{"stream":"Step 3/3 : ENV DEMO_NAME=$NAME"}
{"stream":"\n"}
{"stream":" ---\u003e dcc4c4be43c6\n"}
{"aux":{"ID":"sha256:dcc4c4be43c63d0a2132d01ce2313a38565031440dca4e46c3609b0a560e3a47"}}
{"stream":"Successfully built dcc4c4be43c6\n"}
{"stream":"Successfully tagged bx-ok:latest\n"}
`
	streamFailed = `{"stream":"Step 1/2 : FROM tend-demo:dev"}
{"stream":"\n"}
{"stream":" ---\u003e c4323b264230\n"}
{"stream":"Step 2/2 : RUN [\"/demo\", \"-exit-code\", \"3\"]"}
{"stream":"\n"}
{"stream":" ---\u003e Running in 205ba7e3a139\n"}
{"stream":"demo 205ba7e3a139 job: exiting with status 3 after 0s\nStep by step, it ends\n"}
{"stream":"Removing intermediate container 205ba7e3a139\n"}
{"errorDetail":{"code":3,"message":"The command '/demo -exit-code 3' returned a non-zero code: 3"},"error":"The command '/demo -exit-code 3' returned a non-zero code: 3"}
`
	streamPull = `{"stream":"Step 1/1 : FROM alpine"}
{"stream":"\n"}
{"status":"Pulling from library/alpine","id":"latest"}
{"status":"Pulling fs layer","progressDetail":{},"id":"a1b2"}
{"status":"Downloading","progressDetail":{"current":100,"total":2000},"progress":"[=\u003e   ]","id":"a1b2"}
{"errorDetail":{"message":"no such host"},"error":"no such host"}
`
)

func TestFollowBuild(t *testing.T) {
	tests := []struct {
		name       string
		stream     string
		wantID     string
		wantErr    string
		wantOutput string
	}{
		{name: "built", stream: streamBuilt,
			wantID: "sha256:dcc4c4be43c63d0a2132d01ce2313a38565031440dca4e46c3609b0a560e3a47",
			wantOutput: "Step 1/3 : FROM tend-demo:dev\n ---> c4323b264230\nStep 2/3 : ARG NAME=x\n ---> Running in e034452f90dd\n" +
				"Removing intermediate container e034452f90dd\n ---> 681f75130f34\nStep 3/3 : ENV DEMO_NAME=$NAME\n ---> dcc4c4be43c6\n" +
				"Successfully built dcc4c4be43c6\nSuccessfully tagged bx-ok:latest\n"},
		{name: "a step failed", stream: streamFailed,
			wantErr: `step 2/2 (RUN ["/demo", "-exit-code", "3"]): The command '/demo -exit-code 3' returned a non-zero code: 3`,
			wantOutput: "Step 1/2 : FROM tend-demo:dev\n ---> c4323b264230\nStep 2/2 : RUN [\"/demo\", \"-exit-code\", \"3\"]\n" +
				" ---> Running in 205ba7e3a139\ndemo 205ba7e3a139 job: exiting with status 3 after 0s\nStep by step, it ends\n" +
				"Removing intermediate container 205ba7e3a139\n"},
		{name: "pulling a base image", stream: streamPull,
			wantErr:    `step 1/1 (FROM alpine): no such host`,
			wantOutput: "Step 1/1 : FROM alpine\nlatest: Pulling from library/alpine\na1b2: Pulling fs layer\n"},
		{name: "no ID in the stream", stream: `{"stream":"Successfully built dcc4c4be43c6\n"}`,
			wantOutput: "Successfully built dcc4c4be43c6\n"},
		{name: "broken stream", stream: `{"stream":"Step 1/1 : FROM x"}{"stre`,
			wantErr: "docker: read build output: unexpected EOF", wantOutput: "Step 1/1 : FROM x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			id, err := followBuild(strings.NewReader(tt.stream), &out)
			if id != tt.wantID {
				t.Errorf("id %q, want %q", id, tt.wantID)
			}
			if got := errString(err); got != tt.wantErr {
				t.Errorf("error:\n got %s\nwant %s", got, tt.wantErr)
			}
			if out.String() != tt.wantOutput {
				t.Errorf("output:\n got %q\nwant %q", out.String(), tt.wantOutput)
			}
		})
	}
	_, err := followBuild(strings.NewReader(streamFailed), io.Discard)
	var be *runtime.BuildError
	if !errors.As(err, &be) || errs.KindOf(err) != errs.Invalid || be.Step != `2/2 : RUN ["/demo", "-exit-code", "3"]` {
		t.Errorf("a failed step: %#v, want a *runtime.BuildError of kind invalid", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestParseStep(t *testing.T) {
	for in, want := range map[string]string{
		"Step 2/3 : COPY app /app":   "2/3 : COPY app /app",
		"Step 10/12 : RUN x\n":       "10/12 : RUN x",
		"Step by step : it ends":     "",
		"Step 1 : FROM x":            "",
		" ---> Running in 205ba7e3a": "",
	} {
		got, ok := parseStep(in)
		if got != want || ok != (want != "") {
			t.Errorf("parseStep(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestBuildOptions(t *testing.T) {
	b := spec.Build{Context: "/src", Dockerfile: "x", Args: map[string]string{"A": "1", "EMPTY": ""}, Target: "prod", Labels: map[string]string{"team": "web"}}
	o := buildOptions("shop-web", b, "build/prod.Dockerfile")
	if !slices.Equal(o.Tags, []string{"shop-web"}) || o.Dockerfile != "build/prod.Dockerfile" || o.Target != "prod" || o.Labels["team"] != "web" {
		t.Errorf("options %+v", o)
	}
	if len(o.BuildArgs) != 2 || *o.BuildArgs["A"] != "1" || o.BuildArgs["EMPTY"] == nil || *o.BuildArgs["EMPTY"] != "" {
		t.Errorf("build args %v: want A=1 and an empty, set EMPTY", o.BuildArgs)
	}
	if !o.Remove || !o.ForceRemove || o.Version != "1" || o.PullParent || o.NoCache {
		t.Errorf("remove %v, force remove %v, builder %q, pull %v, no cache %v: want intermediate containers removed, classic builder, cache on",
			o.Remove, o.ForceRemove, o.Version, o.PullParent, o.NoCache)
	}
	if o := buildOptions("x", spec.Build{}, "Dockerfile"); o.BuildArgs != nil {
		t.Errorf("no args: %v", o.BuildArgs)
	}
}

// buildEngine plays the engine's /build and /images endpoints for Build and
// ImageID, and records what a build sent.
type buildEngine struct {
	mu      sync.Mutex
	query   url.Values
	entries []string
	answer  func(w http.ResponseWriter) // the answer to /build
}

func startBuildEngine(t *testing.T, answer func(w http.ResponseWriter)) (*buildEngine, *Docker) {
	t.Helper()
	e := &buildEngine{answer: answer}
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/build") && r.URL.Query().Get("t") == "early":
			e.answer(w) // without reading the context
		case strings.HasSuffix(r.URL.Path, "/build"):
			e.record(t, r)
			e.answer(w)
		case strings.HasSuffix(r.URL.Path, "/images/present:1/json"):
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"Id": "sha256:present"}`))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message": "No such image"}`))
		}
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return e, d
}

func (e *buildEngine) record(t *testing.T, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.query = r.URL.Query()
	tr := tar.NewReader(r.Body)
	for {
		hdr, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("engine: read context: %v", err)
			}
			return
		}
		e.entries = append(e.entries, hdr.Name)
	}
}

func stream(s string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(s))
	}
}

func TestBuildSendsContextAndOptions(t *testing.T) {
	e, d := startBuildEngine(t, stream(streamBuilt))
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\n", "app": "x", ".git/HEAD": "ref"})
	var out strings.Builder
	id, err := d.Build(t.Context(), "shop-web", spec.Build{Context: dir, Dockerfile: "Dockerfile",
		Args: map[string]string{"V": "2"}, Target: "prod", Labels: map[string]string{"team": "web"}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "sha256:dcc4c4be43c6") || !strings.Contains(out.String(), "Successfully tagged") {
		t.Errorf("id %q, output %q", id, out.String())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, want := range map[string]string{"t": "shop-web", "dockerfile": "Dockerfile", "target": "prod",
		"buildargs": `{"V":"2"}`, "labels": `{"team":"web"}`, "version": "1", "forcerm": "1", "rm": ""} {
		if got := e.query.Get(k); got != want {
			t.Errorf("query %s=%q, want %q", k, got, want)
		}
	}
	if !slices.Equal(e.entries, []string{"Dockerfile", "app"}) {
		t.Errorf("context sent: %q", e.entries)
	}
}

func TestBuildFailures(t *testing.T) {
	refused := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"message":"dockerfile parse error line 2: unknown instruction: FOO"}`))
	}
	broken := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"message":"disk full"}`))
	}
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	tests := []struct {
		name    string
		answer  func(w http.ResponseWriter)
		image   string
		b       spec.Build
		want    string
		invalid bool // a *runtime.BuildError
	}{
		{"a step failed", stream(streamFailed), "shop-web", spec.Build{Context: dir, Dockerfile: "Dockerfile"},
			`step 2/2 (RUN ["/demo", "-exit-code", "3"]): The command '/demo -exit-code 3' returned a non-zero code: 3`, true},
		{"the engine refused the Dockerfile", refused, "shop-web", spec.Build{Context: dir, Dockerfile: "Dockerfile"},
			"dockerfile parse error line 2: unknown instruction: FOO", true},
		{"the engine failed", broken, "shop-web", spec.Build{Context: dir, Dockerfile: "Dockerfile"},
			"docker: build shop-web: Error response from daemon: disk full", false},
		{"a bad image name", stream(streamBuilt), "Shop-Web", spec.Build{Context: dir, Dockerfile: "Dockerfile"},
			`image name "Shop-Web": invalid reference format: repository name (library/Shop-Web) must be lowercase`, true},
		{"no Dockerfile", stream(streamBuilt), "shop-web", spec.Build{Context: dir, Dockerfile: "nope"},
			"dockerfile: stat " + filepath.Join(dir, "nope") + ": no such file or directory", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, d := startBuildEngine(t, tt.answer)
			_, err := d.Build(t.Context(), tt.image, tt.b, io.Discard)
			if got := errString(err); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			var be *runtime.BuildError
			if errors.As(err, &be) != tt.invalid {
				t.Errorf("error %T: want a *runtime.BuildError: %v", err, tt.invalid)
			}
		})
	}
}

// An engine that answers before it has read the whole context is the one to
// explain the failure; the broken upload is not the user's.
func TestBuildRefusedBeforeTheContextIsRead(t *testing.T) {
	_, d := startBuildEngine(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"message":"no builder here"}`))
	})
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\n", "big": strings.Repeat("x", 4<<20)})
	_, err := d.Build(t.Context(), "early", spec.Build{Context: dir, Dockerfile: "Dockerfile"}, io.Discard)
	if got := errString(err); got != "no builder here" {
		t.Errorf("error %q, want the engine's", got)
	}
}

func TestImageID(t *testing.T) {
	_, d := startBuildEngine(t, stream(""))
	if id, err := d.ImageID(t.Context(), "present:1"); err != nil || id != "sha256:present" {
		t.Errorf("present image: %q, %v", id, err)
	}
	if id, err := d.ImageID(t.Context(), "absent:1"); err != nil || id != "" {
		t.Errorf("absent image: %q, %v; want no ID and no error", id, err)
	}
}
