package compose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// brokenShapes are files compose refuses whose shape compose-go's own code chokes
// on (a null service panicked its normalization) or reports without naming the key.
// (other.yaml beside it is a valid file to include.) Each is refused in one line naming the file and, where there is one, service and key.
// The fuzz corpus (testdata/fuzz/FuzzLoad) holds the same inputs.
var brokenShapes = []struct {
	name, file, want string
}{
	{"null service", "services:\n  foo:\n", `services.foo must be a mapping`},
	{"networks as a string", "services:\n  foo:\n    image: x\n    networks: abc\n", `service "foo": networks: must be a list or a mapping`},
	{"ports null", "services:\n  foo:\n    image: x\n    ports:\n", `service "foo": ports: must be a list`},
	{"services as a list", "services: [a]\n", `services must be a mapping`},
	{"the file a list", "- a\n- b\n", `the file must be a mapping of top-level keys (services:, networks:, ...)`},
	{"the file a word", "hello\n", `the file must be a mapping of top-level keys (services:, networks:, ...)`},
	{"include a number", "include: 3\nservices:\n  foo:\n    image: x\n", `include: must be a list of files`},
	{"labels a number", "services:\n  foo:\n    image: x\n    labels: 3\n", `service "foo": labels: must be a list or a mapping`},
	{"null top-level networks", "services:\n  foo:\n    image: x\nnetworks:\n", `networks must be a mapping`},
	{"null volume entry", "services:\n  foo:\n    image: x\n    volumes:\n      -\n", `service "foo": volumes.0: must be a string`},
	{"null dependency", "services:\n  foo:\n    image: x\n    depends_on:\n      bar:\n  bar:\n    image: y\n", `service "foo": depends_on.bar: must be a mapping`},
	{"null secret", "services:\n  foo:\n    image: x\n    secrets: [s]\nsecrets:\n  s:\n", `secrets.s must be a mapping`},
	{"null build", "services:\n  foo:\n    build:\n", `service "foo": build: must be a string`},
	{"extends file missing", "services:\n  foo:\n    extends:\n      file: ./base/compose.yaml\n      service: base\n",
		`service "foo": extends.file: cannot read base/compose.yaml: no such file or directory`},
	{"extends without service", "services:\n  foo:\n    image: x\n    extends:\n      file: compose.yaml\n", `service "foo": extends.service: required`},
	{"include missing", "include:\n  - path: ./db/compose.yaml\nservices:\n  foo:\n    image: x\n",
		`include.0.path: cannot read db/compose.yaml: no such file or directory`},
	{"include env_file missing", "include:\n  - path: ./other.yaml\n    env_file: ./db.env\nservices:\n  foo:\n    image: x\n",
		`include.0.env_file: cannot read db.env: no such file or directory`},
	{"label_file missing", "services:\n  foo:\n    image: x\n    label_file: ./labels\n", `service "foo": label_file: cannot read labels: no such file or directory`},
	{"bind without source", "services:\n  foo:\n    image: x\n    volumes:\n      - type: bind\n        target: /app\n", `service "foo": volumes.0: a bind mount needs a source`},
	{"volume without target", "services:\n  foo:\n    image: x\n    volumes:\n      - type: volume\n        source: data\nvolumes:\n  data: {}\n",
		`service "foo": volumes.0: missing a mount target`},
	{"environment with a trailing space", "services:\n  foo:\n    image: x\n    environment:\n      - \"DEBUG =1\"\n",
		`service "foo": environment: environment variable DEBUG is declared with a trailing space`},
	{"tmpfs size of a string", "services:\n  foo:\n    image: x\n    volumes:\n      - type: tmpfs\n        target: /t\n        tmpfs: {size: big}\n",
		`service "foo": volumes[0].tmpfs.size: invalid size: 'big'`},
}

func TestBrokenShapes(t *testing.T) {
	for _, tt := range brokenShapes {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "compose.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "other.yaml"), []byte("services:\n  other:\n    image: x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := Load(context.Background(), LoadOptions{Files: []string{path}, ProjectName: "shapes"})
			wantError(t, err, path+": "+tt.want)
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error on more than one line: %q", err)
			}
		})
	}
}

// Of several files, the error names the one whose key points at the missing file.
func TestMissingFileOfTheSecondFile(t *testing.T) {
	dir := t.TempDir()
	base, over := filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "override.yaml")
	for path, body := range map[string]string{
		base: "services:\n  app:\n    image: x\n",
		over: "services:\n  app:\n    extends:\n      file: ./common.yaml\n      service: app\n",
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := Load(context.Background(), LoadOptions{Files: []string{base, over}, ProjectName: "shapes"})
	wantError(t, err, over+`: service "app": extends.file: cannot read common.yaml: no such file or directory`)
}
