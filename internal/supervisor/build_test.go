package supervisor_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/supervisor"
)

func buildRequest(always bool) supervisor.BuildRequest {
	return supervisor.BuildRequest{Project: "demo", Service: "web", Image: "demo-web",
		Build: spec.Build{Context: "/src/web", Dockerfile: "Dockerfile"}, Always: always}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name      string
		existing  string // the image's ID before the build; "" when missing
		always    bool
		wantBuilt bool
		wantEntry string // the journal's message, "" for none
	}{
		{name: "missing image", wantBuilt: true,
			wantEntry: "build/missing: built image demo-web (sha256:fake00000001) from /src/web (Dockerfile) in 0s"},
		{name: "existing image", existing: "sha256:old", wantBuilt: false},
		{name: "existing image, always", existing: "sha256:old", always: true, wantBuilt: true,
			wantEntry: "build/requested: built image demo-web (sha256:fake00000001) from /src/web (Dockerfile) in 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.existing != "" {
				h.rt.AddImage("demo-web", tt.existing)
			}
			var out strings.Builder
			res, err := h.sup.Build(t.Context(), buildRequest(tt.always), &out)
			if err != nil {
				t.Fatal(err)
			}
			if res.Built != tt.wantBuilt {
				t.Errorf("built %v, want %v", res.Built, tt.wantBuilt)
			}
			calls := h.calls(fake.MethodImageID, fake.MethodBuild)
			if id, _ := h.rt.ImageID(t.Context(), "demo-web"); res.ID != id {
				t.Errorf("result ID %q, the image's %q", res.ID, id)
			}
			wantCalls := []string{"ImageID(demo-web)"}
			if tt.wantBuilt {
				wantCalls = append(wantCalls, "Build(demo-web, /src/web)")
				if !strings.Contains(out.String(), "Step 2/2") {
					t.Errorf("build output not passed on: %q", out.String())
				}
			}
			if !slices.Equal(calls, wantCalls) {
				t.Errorf("calls %q, want %q", calls, wantCalls)
			}
			var got []string
			for _, e := range h.entries(match{action: "build", reason: "missing", service: "web"}) {
				got = append(got, "build/missing: "+e.Message)
			}
			for _, e := range h.entries(match{action: "build", reason: "requested", service: "web"}) {
				got = append(got, "build/requested: "+e.Message)
			}
			var want []string
			if tt.wantEntry != "" {
				want = []string{tt.wantEntry}
			}
			if !slices.Equal(got, want) {
				t.Errorf("journal %q, want %q", got, want)
			}
			if _, err := h.st.Project("demo"); errs.KindOf(err) != errs.NotFound {
				t.Errorf("a build stored the project: %v", err)
			}
		})
	}
}

// cachedEngine builds as an engine whose cache serves every step: the image
// keeps its ID.
type cachedEngine struct{ *fake.Fake }

func (e cachedEngine) Build(ctx context.Context, image string, _ spec.Build, _ io.Writer) (string, error) {
	return e.ImageID(ctx, image)
}

func TestBuildUnchanged(t *testing.T) {
	h := newHarness(t)
	h.rt.AddImage("demo-web", "sha256:0123456789abcdef")
	sup := supervisor.New(supervisor.Config{Runtime: cachedEngine{h.rt}, Store: h.st, Clock: h.clk})
	res, err := sup.Build(t.Context(), buildRequest(true), &strings.Builder{})
	if err != nil || !res.Built || res.ID != "sha256:0123456789abcdef" {
		t.Fatalf("build: %+v, %v", res, err)
	}
	es := h.entries(match{action: "build", reason: "requested", service: "web"})
	if want := "built image demo-web (0123456789ab) from /src/web (Dockerfile) in 0s, unchanged"; len(es) != 1 || es[0].Message != want {
		t.Errorf("journal %+v, want %q", es, want)
	}
}

func TestBuildFailure(t *testing.T) {
	h := newHarness(t)
	h.rt.FailNext(fake.MethodBuild, &runtime.BuildError{Step: "2/2 : COPY app /app", Message: "COPY failed: no such file"})
	var out strings.Builder
	_, err := h.sup.Build(t.Context(), buildRequest(false), &out)
	want := `service "web": build: step 2/2 (COPY app /app): COPY failed: no such file`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	if errs.KindOf(err) != errs.Invalid {
		t.Errorf("kind %s, want invalid", errs.KindOf(err))
	}
	if !strings.Contains(out.String(), "Step 1/2") {
		t.Errorf("the output before the failure was not passed on: %q", out.String())
	}
	es := h.entries(match{action: "build", reason: "missing", service: "web", failed: true})
	if len(es) != 1 || es[0].Error != want || es[0].Message != "build of image demo-web from /src/web (Dockerfile) failed" {
		t.Errorf("journal: %+v", es)
	}
	if id, _ := h.rt.ImageID(t.Context(), "demo-web"); id != "" {
		t.Errorf("a failed build left image %s", id)
	}
}

func TestBuildInvalid(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		name   string
		mutate func(*supervisor.BuildRequest)
		want   string
	}{
		{"bad project", func(r *supervisor.BuildRequest) { r.Project = "Demo" }, `build: invalid project name "Demo"`},
		{"no service", func(r *supervisor.BuildRequest) { r.Service = "" }, "build: no service named"},
		{"no image", func(r *supervisor.BuildRequest) { r.Image = "" }, `build: service "web": no image to tag`},
		{"relative context", func(r *supervisor.BuildRequest) { r.Build.Context = "web" }, `service "web": build.context: "web" is not an absolute path`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := buildRequest(true)
			tt.mutate(&req)
			_, err := h.sup.Build(t.Context(), req, &strings.Builder{})
			if err == nil || err.Error() != tt.want || errs.KindOf(err) != errs.Invalid {
				t.Errorf("error %v (kind %s), want invalid: %s", err, errs.KindOf(err), tt.want)
			}
		})
	}
	if calls := h.calls(fake.MethodImageID, fake.MethodBuild); len(calls) > 0 {
		t.Errorf("an invalid request reached the runtime: %q", calls)
	}
}
