package fake_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
)

func TestBuild(t *testing.T) {
	ctx := context.Background()
	f := fake.New()
	b := spec.Build{Context: "/src", Dockerfile: "Dockerfile"}
	if id, err := f.ImageID(ctx, "shop-web"); id != "" || err != nil {
		t.Fatalf("image before any build: %q, %v", id, err)
	}
	var out strings.Builder
	id, err := f.Build(ctx, "shop-web", b, &out)
	if err != nil || id != "sha256:fake00000001" {
		t.Fatalf("build: %q, %v", id, err)
	}
	if got, _ := f.ImageID(ctx, "shop-web"); got != id {
		t.Errorf("image after the build: %q, want %q", got, id)
	}
	if out.String() != "Step 1/2 : FROM scratch\nStep 2/2 : LABEL image=shop-web\n" {
		t.Errorf("output %q", out.String())
	}

	boom := errors.New("boom")
	f.FailNext(fake.MethodBuild, boom)
	out.Reset()
	if _, err := f.Build(ctx, "shop-web", b, &out); err != boom {
		t.Errorf("injected failure: %v", err)
	}
	if out.String() != "Step 1/2 : FROM scratch\n" {
		t.Errorf("output before the failure: %q", out.String())
	}
	if got, _ := f.ImageID(ctx, "shop-web"); got != id {
		t.Errorf("a failed build changed the image: %q", got)
	}

	f.AddImage("base:1", "sha256:base")
	if got, _ := f.ImageID(ctx, "base:1"); got != "sha256:base" {
		t.Errorf("added image: %q", got)
	}
	var calls []string
	for _, c := range f.Calls() {
		calls = append(calls, c.String())
	}
	want := "ImageID(shop-web) Build(shop-web, /src) ImageID(shop-web) Build(shop-web, /src) ImageID(shop-web) ImageID(base:1)"
	if strings.Join(calls, " ") != want {
		t.Errorf("calls %q, want %q", strings.Join(calls, " "), want)
	}
}
