package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tend-sh/tend/internal/spec"
)

// FuzzLoad feeds Load arbitrary compose files. Whatever compose-go makes of them,
// Load returns a valid project or one *spec.Error on one line: it never panics.
// A project it returns is one the daemon takes: sent as `tend up` sends it
// (JSON), it decodes strictly and validates again.
// The seeds are the repository's own compose files plus shapes that crashed before;
// testdata/fuzz/FuzzLoad holds the shapes of TestBrokenShapes.
// `go test -fuzz FuzzLoad ./internal/compose` searches further; plain `go test` runs the seeds.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"services:\n  foo:\n", // a null service: compose-go's normalization panicked
		"services:\n  foo:\n    image: x\n    networks: abc\n", // networks as a string: the same
		"services:\n  foo:\n    image: x\n    ports: [\"8080:80\"]\n",
		"services: [a]\n",
		"x-tend: {}\nservices:\n  a:\n    image: x\n    x-tend: {probes: 3}\n",
	} {
		f.Add([]byte(seed))
	}
	files, _ := filepath.Glob("testdata/*/*.y*ml")
	deeper, _ := filepath.Glob("testdata/*/*/*.y*ml")
	files = append(files, deeper...)
	for _, path := range files {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "compose.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, _, err := Load(context.Background(), LoadOptions{Files: []string{path}, ProjectName: "fuzz"})
		if err == nil {
			if p == nil {
				t.Fatal("no project and no error")
			}
			daemonAccepts(t, p)
			return
		}
		var e *spec.Error
		if !errors.As(err, &e) && !strings.HasPrefix(err.Error(), "spec:") {
			t.Fatalf("error of no known kind: %T %v", err, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("error on more than one line: %q", err)
		}
	})
}

// daemonAccepts sends p through JSON as `tend up` does and checks that the
// daemon's decoding (unknown fields refused) and validation take it.
func daemonAccepts(t *testing.T, p *spec.Project) {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("a loaded project does not encode: %v", err)
	}
	var back spec.Project
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("a loaded project does not decode as the daemon decodes it: %v\n%s", err, b)
	}
	if err := spec.Validate(&back); err != nil {
		t.Fatalf("the daemon refuses a project Load accepted: %v\n%s", err, b)
	}
}

// FuzzExtension feeds the x-tend schema arbitrary YAML, as a service's
// x-tend block: parseExtension never panics, refuses with one *spec.Error on
// one line, and what it accepts is consistent (a backoff whose initial delay
// is no more than its max, no negative duration).
func FuzzExtension(f *testing.F) {
	for _, seed := range []string{
		"backoff: {initial: 1s, max: 30s, reset_after: 10s}\n",
		"liveness: {http: {path: /healthz, port: 8080}, interval: 2s, timeout: 1s, failures: 3}\n",
		"readiness: {tcp: {port: 5432}}\n",
		"logs: [{match: 'FATAL', action: replace}, {match: '(?i)out of memory', action: alert}]\n",
		"idempotent: [GET, PUT]\n",
		"autoscale: {min: 1, max: 5, target: {p95: 50ms}}\n",
		"quarantine: {after: 5, within: 1m}\nfallback: {status: 503, body: down}\nbreaker: {failures: 0.5}\n",
		"backoff: {initial: 1m, max: 1s}\n",
		"backoff: 3\n",
		"- a\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var raw any
		if yaml.Unmarshal(data, &raw) != nil {
			return
		}
		ext, err := parseExtension("web", raw)
		if err != nil {
			var e *spec.Error
			if !errors.As(err, &e) {
				t.Fatalf("error of no known kind: %T %v", err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error on more than one line: %q", err)
			}
			return
		}
		b := ext.Backoff
		if b.Initial < 0 || b.Max < 0 || b.ResetAfter < 0 || b.Initial > b.Max {
			t.Fatalf("accepted an inconsistent backoff: %+v", b)
		}
	})
}
