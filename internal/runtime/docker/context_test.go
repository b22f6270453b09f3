package docker

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/spec"
)

func TestDockerignore(t *testing.T) {
	tests := []struct {
		patterns string
		path     string
		excluded bool
	}{
		{"secret.txt", "secret.txt", true},
		{"secret.txt", "sub/secret.txt", false}, // patterns are anchored at the context, unlike .gitignore
		{"/secret.txt", "secret.txt", true},
		{"./secret.txt", "secret.txt", true},
		{"docs", "docs/a/b.md", true}, // a directory takes what is below it
		{"docs/", "docs/a.md", true},
		{"*.log", "a.log", true},
		{"*.log", "logs/a.log", false}, // * stops at a slash
		{"*/*.log", "logs/a.log", true},
		{"**/*.log", "a.log", true},
		{"**/*.log", "x/y/z/a.log", true},
		{"logs/**", "logs/a/b", true},
		{"logs/**", "logsx", false},
		{"a?c", "abc", true},
		{"a?c", "a/c", false},
		{"[a-c].txt", "b.txt", true},
		{"[a-c].txt", "d.txt", false},
		{"file.txt", "fileXtxt", false}, // a dot is a dot
		{`\*.txt`, "*.txt", true},
		{"docs\n!docs/keep.md", "docs/keep.md", false},
		{"docs\n!docs/keep.md", "docs/other.md", true},
		{"!keep.md\n*.md", "keep.md", true}, // the last match decides
		{"*\n!app", "app", false},
		{"*\n!app", "Dockerfile", true},
		{"# a comment\n\n   \nbuild", "build/x", true},
		{"#build", "#build", false},
		{"", "anything", false},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.patterns, "\n", ";")+" "+tt.path, func(t *testing.T) {
			ig, err := parseDockerignore(strings.NewReader(tt.patterns))
			if err != nil {
				t.Fatal(err)
			}
			if got := ig.excludes(tt.path); got != tt.excluded {
				t.Errorf("excludes(%q) = %v, want %v", tt.path, got, tt.excluded)
			}
		})
	}
	if _, err := parseDockerignore(strings.NewReader("[z-a]")); err == nil || err.Error() != `invalid pattern "[z-a]"` {
		t.Errorf("bad pattern: %v", err)
	}
}

// writeTree makes files (path: content) under a new directory and returns it.
// A content starting with "->" makes a symbolic link to the rest.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, path)
		} else {
			err = os.WriteFile(path, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// archive builds b's context and returns its entries: name -> content (or
// "->target" for a link, "dir" for a directory).
func archive(t *testing.T, b spec.Build) (*buildContext, map[string]string) {
	t.Helper()
	bc, err := newBuildContext(b)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := bc.write(&buf); err != nil {
		t.Fatal(err)
	}
	entries := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" {
			t.Errorf("%s is owned by %d:%d (%s), want root", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			entries[hdr.Name] = "dir"
		case tar.TypeSymlink:
			entries[hdr.Name] = "->" + hdr.Linkname
		default:
			content, _ := io.ReadAll(tr)
			entries[hdr.Name] = string(content)
		}
	}
	return bc, entries
}

func names(entries map[string]string) []string {
	var out []string
	for name := range entries {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func TestContextHonoursDockerignore(t *testing.T) {
	dir := writeTree(t, map[string]string{
		".dockerignore":        "docs\n!docs/keep.md\nnode_modules\n*.log\nDockerfile\n.dockerignore\n",
		"Dockerfile":           "FROM scratch\n",
		"app":                  "binary",
		"app.log":              "noise",
		"docs/a.md":            "a",
		"docs/keep.md":         "keep",
		"node_modules/x/y.js":  "y",
		"src/main.go":          "package main",
		"src/current":          "->main.go",
		".git/HEAD":            "ref: main", // sent: a .dockerignore says what stays out
		"sub/deeper/trace.log": "sent: *.log is anchored at the context",
	})
	_, entries := archive(t, spec.Build{Context: dir, Dockerfile: "Dockerfile"})
	want := []string{".dockerignore", ".git/", ".git/HEAD", "Dockerfile", "app", "docs/keep.md", "src/", "src/current", "src/main.go",
		"sub/", "sub/deeper/", "sub/deeper/trace.log"}
	if got := names(entries); !slices.Equal(got, want) {
		t.Errorf("archive holds\n %q\nwant\n %q", got, want)
	}
	if entries["app"] != "binary" || entries["src/current"] != "->main.go" {
		t.Errorf("content: app %q, link %q", entries["app"], entries["src/current"])
	}
}

func TestContextWithoutDockerignoreLeavesOutGit(t *testing.T) {
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\n", ".git/HEAD": "ref", "app": "x", ".github/ci.yaml": "y"})
	_, entries := archive(t, spec.Build{Context: dir, Dockerfile: "Dockerfile"})
	if got, want := names(entries), []string{".github/", ".github/ci.yaml", "Dockerfile", "app"}; !slices.Equal(got, want) {
		t.Errorf("archive holds %q, want %q", got, want)
	}
}

func TestContextDockerfiles(t *testing.T) {
	root := writeTree(t, map[string]string{
		"ctx/app":                 "x",
		"ctx/build/prod.docker":   "FROM scratch\nCOPY app /app\n",
		"ctx/.dockerignore":       "build\n",
		"shared/outside.docker":   "FROM scratch\n",
		"ctx/build/not-sent.conf": "z",
	})
	ctx := filepath.Join(root, "ctx")
	tests := []struct {
		name           string
		b              spec.Build
		wantDockerfile string
		wantNames      []string
	}{
		{"in an ignored directory", spec.Build{Context: ctx, Dockerfile: "build/prod.docker"}, "build/prod.docker",
			[]string{".dockerignore", "app", "build/prod.docker"}},
		{"absolute, inside", spec.Build{Context: ctx, Dockerfile: filepath.Join(ctx, "build/prod.docker")}, "build/prod.docker",
			[]string{".dockerignore", "app", "build/prod.docker"}},
		{"outside the context", spec.Build{Context: ctx, Dockerfile: "../shared/outside.docker"}, ".tend-dockerfile-",
			[]string{".dockerignore", "app"}},
		{"inline", spec.Build{Context: ctx, DockerfileInline: "FROM scratch\n"}, ".tend-dockerfile-",
			[]string{".dockerignore", "app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bc, entries := archive(t, tt.b)
			if !strings.HasPrefix(bc.dockerfile, tt.wantDockerfile) {
				t.Errorf("dockerfile %q, want %q", bc.dockerfile, tt.wantDockerfile)
			}
			want := tt.wantNames
			if bc.extra != nil {
				want = append(slices.Clone(want), bc.dockerfile)
				slices.Sort(want)
				if entries[bc.dockerfile] != "FROM scratch\n" {
					t.Errorf("the Dockerfile carried along holds %q", entries[bc.dockerfile])
				}
			}
			if got := names(entries); !slices.Equal(got, want) {
				t.Errorf("archive holds %q, want %q", got, want)
			}
		})
	}
	// The same Dockerfile gets the same name, so the engine's cache still hits.
	a, _ := newBuildContext(spec.Build{Context: ctx, DockerfileInline: "FROM scratch\n"})
	b, _ := newBuildContext(spec.Build{Context: ctx, Dockerfile: "../shared/outside.docker"})
	if a.dockerfile != b.dockerfile {
		t.Errorf("one content, two names: %s, %s", a.dockerfile, b.dockerfile)
	}
}

func TestContextErrors(t *testing.T) {
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\n", "bad/.dockerignore": "[z-a]\n", "bad/Dockerfile": "x"})
	tests := []struct {
		name string
		b    spec.Build
		want string
	}{
		{"missing context", spec.Build{Context: filepath.Join(dir, "nope"), Dockerfile: "Dockerfile"}, "context: stat " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"context is a file", spec.Build{Context: filepath.Join(dir, "Dockerfile"), Dockerfile: "Dockerfile"}, "context " + filepath.Join(dir, "Dockerfile") + " is not a directory"},
		{"missing Dockerfile", spec.Build{Context: dir, Dockerfile: "prod.Dockerfile"}, "dockerfile: stat " + filepath.Join(dir, "prod.Dockerfile") + ": no such file or directory"},
		{"Dockerfile is a directory", spec.Build{Context: dir, Dockerfile: "bad"}, "dockerfile " + filepath.Join(dir, "bad") + " is not a file"},
		{"bad .dockerignore", spec.Build{Context: filepath.Join(dir, "bad"), Dockerfile: "Dockerfile"}, `.dockerignore: invalid pattern "[z-a]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newBuildContext(tt.b)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %s", err, tt.want)
			}
		})
	}
}
