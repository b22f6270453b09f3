package compose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/spec"
)

// buildProject writes a project directory "shop" with the given compose file and
// an app/ context holding a Dockerfile and other.Dockerfile, and loads it.
func buildProject(t *testing.T, body string, environ ...string) (string, *spec.Project, []spec.Warning, error) {
	t.Helper()
	dir := writeCompose(t, "shop", body)
	for _, f := range []string{"app/Dockerfile", "app/other.Dockerfile", "shared.Dockerfile"} {
		path := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("FROM scratch\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, warnings, err := Load(context.Background(), LoadOptions{WorkingDir: dir, Environ: environ})
	return dir, p, warnings, err
}

func TestLoadBuild(t *testing.T) {
	tests := []struct {
		name      string
		service   string // the keys of service "app", indented by four spaces
		environ   []string
		wantImage string
		want      func(dir string) *spec.Build
	}{
		{name: "short syntax, image named after project and service", service: "    build: ./app",
			wantImage: "shop-app",
			want: func(dir string) *spec.Build {
				return &spec.Build{Context: filepath.Join(dir, "app"), Dockerfile: "Dockerfile"}
			}},
		{name: "image: names the built image", service: "    image: registry.local/app:2\n    build: app",
			wantImage: "registry.local/app:2",
			want: func(dir string) *spec.Build {
				return &spec.Build{Context: filepath.Join(dir, "app"), Dockerfile: "Dockerfile"}
			}},
		{name: "an empty dockerfile (an unset variable) is Dockerfile, as in compose",
			service: "    build: {context: app, dockerfile: \"${UNSET_DOCKERFILE}\"}", wantImage: "shop-app",
			want: func(dir string) *spec.Build {
				return &spec.Build{Context: filepath.Join(dir, "app"), Dockerfile: "Dockerfile"}
			}},
		{name: "long syntax", service: `    build:
      context: app
      dockerfile: other.Dockerfile
      target: prod
      args: {VERSION: "1.2", EMPTY: "", FROM_ENV: null, UNSET: null}
      labels: {team: shop}`,
			environ:   []string{"FROM_ENV=yes"},
			wantImage: "shop-app",
			want: func(dir string) *spec.Build {
				return &spec.Build{Context: filepath.Join(dir, "app"), Dockerfile: "other.Dockerfile", Target: "prod",
					Args:   map[string]string{"VERSION": "1.2", "EMPTY": "", "FROM_ENV": "yes"},
					Labels: map[string]string{"team": "shop"}}
			}},
		{name: "args as a list", service: "    build:\n      context: app\n      args: [\"A=1\", B]",
			environ: []string{"B=2"}, wantImage: "shop-app",
			want: func(dir string) *spec.Build {
				return &spec.Build{Context: filepath.Join(dir, "app"), Dockerfile: "Dockerfile", Args: map[string]string{"A": "1", "B": "2"}}
			}},
		{name: "Dockerfile outside the context", service: "    build: {context: app, dockerfile: ../shared.Dockerfile}",
			wantImage: "shop-app",
			want: func(dir string) *spec.Build {
				return &spec.Build{Context: filepath.Join(dir, "app"), Dockerfile: "../shared.Dockerfile"}
			}},
		{name: "inline Dockerfile", service: "    build:\n      context: .\n      dockerfile_inline: |\n        FROM scratch\n        COPY app /app",
			wantImage: "shop-app",
			want: func(dir string) *spec.Build {
				return &spec.Build{Context: dir, DockerfileInline: "FROM scratch\nCOPY app /app\n"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, p, warnings, err := buildProject(t, "services:\n  app:\n"+tt.service+"\n", tt.environ...)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %v", warnings)
			}
			s, _ := p.Service("app")
			if s.Image != tt.wantImage {
				t.Errorf("image %q, want %q", s.Image, tt.wantImage)
			}
			diff(t, "build", s.Build, tt.want(dir))
		})
	}
}

func TestLoadWithoutBuild(t *testing.T) {
	s, err := loadService(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Build != nil {
		t.Errorf("a service with image only has a build section: %+v", s.Build)
	}
}

func TestLoadBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"remote context", "services:\n  app:\n    build: https://github.com/tend-sh/tend.git#main",
			`compose.yaml: service "app": build.context: "https://github.com/tend-sh/tend.git#main" is a remote context; tend builds from local directories only: clone it (git clone) and give build.context the directory`},
		{"missing context", "services:\n  app:\n    build: ./nope",
			`compose.yaml: service "app": build.context: cannot read nope: no such file or directory`},
		{"context is a file", "services:\n  app:\n    build: ./app/Dockerfile",
			`compose.yaml: service "app": build.context: app/Dockerfile is not a directory`},
		{"missing Dockerfile", "services:\n  app:\n    build: {context: app, dockerfile: prod.Dockerfile}",
			`compose.yaml: service "app": build.dockerfile: cannot read app/prod.Dockerfile: no such file or directory`},
		{"Dockerfile is a directory", "services:\n  app:\n    build: {context: ., dockerfile: app}",
			`compose.yaml: service "app": build.dockerfile: app is not a file`},
		{"neither image nor build", "services:\n  app:\n    command: [x]",
			`compose.yaml: service "app": image: required`},
		{"one image from two sections", "services:\n  a:\n    image: shop:1\n    build: app\n  b:\n    image: shop:1\n    build: {context: app, target: other}",
			`compose.yaml: service "b": build: image shop:1 is also built by service "a", from a different build section`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p, _, err := buildProject(t, tt.body+"\n")
			wantError(t, err, tt.want)
			if p != nil {
				t.Error("got a project with an error")
			}
		})
	}
}

func TestLoadBuildShared(t *testing.T) {
	_, p, _, err := buildProject(t, "services:\n  a:\n    image: shop:1\n    build: app\n  b:\n    image: shop:1\n    build: app\n  c:\n    image: shop:1\n")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Service("a")
	b, _ := p.Service("b")
	if !a.Build.Same(b.Build) || a.Build == b.Build {
		t.Errorf("services a and b: want equal, separate build sections: %+v %+v", a.Build, b.Build)
	}
}

func TestLoadBuildWarnings(t *testing.T) {
	_, _, warnings, err := buildProject(t, `services:
  app:
    build:
      context: app
      network: host
      no_cache: true
      cache_from: [shop-app:cache]
      secrets: [token]
secrets:
  token: {file: ./app/Dockerfile}
`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warnings {
		if strings.Contains(w.Key, "build") {
			got = append(got, w.String())
		}
	}
	want := []string{
		`compose.yaml: service "app": build.cache_from: not honoured by tend, ignored`,
		`compose.yaml: service "app": build.network: not honoured by tend, ignored`,
		`compose.yaml: service "app": build.no_cache: not honoured by tend, ignored`,
		`compose.yaml: service "app": build.secrets: not honoured by tend, ignored`,
	}
	diff(t, "build warnings", got, want)
}
