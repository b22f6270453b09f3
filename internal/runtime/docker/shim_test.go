package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestShimRefusesADynamicBinary(t *testing.T) {
	dir := t.TempDir()
	dynamic := filepath.Join(dir, "dynamic")
	static := filepath.Join(dir, "static")
	for _, b := range []struct {
		out string
		cgo string
	}{{dynamic, "1"}, {static, "0"}} {
		src := filepath.Join(dir, "main.go")
		// net with cgo on links the C library; with cgo off the binary is static.
		os.WriteFile(src, []byte("package main\nimport _ \"net\"\nfunc main() {}\n"), 0o644)
		cmd := exec.Command("go", "build", "-o", b.out, src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo, "GO111MODULE=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("cannot build a test binary here: %v\n%s", err, out) // e.g. no C compiler for the cgo build
		}
	}
	if err := staticBinary(dynamic); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("dynamic binary: %v, want a refusal naming CGO_ENABLED=0", err)
	}
	if err := staticBinary(static); err != nil {
		t.Errorf("static binary refused: %v", err)
	}
	path, err := prepareShim(ShimConfig{Dir: filepath.Join(dir, "shim"), Binary: static})
	if err != nil {
		t.Fatal(err)
	}
	again, err := prepareShim(ShimConfig{Dir: filepath.Join(dir, "shim"), Binary: static})
	if err != nil || again != path {
		t.Errorf("second prepare: %s %v, want the same copy %s", again, err, path)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("copy %s: %v %v", path, fi.Mode(), err)
	}
}
