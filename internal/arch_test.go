// Package internal_test keeps the boundaries of DESIGN.md: pure packages must
// not reach the Docker SDK, the network, os/exec, the store or the wall clock.
package internal_test

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pure is what a pure package must not import, in `go list` pattern syntax:
// "x/..." is x and every package under it. The module's own packages are
// written relative to the module.
var pure = []string{
	"github.com/moby/...",
	"github.com/docker/...",
	"net",
	"net/http/...",
	"os/exec",
	"./internal/clock/...",
	"./internal/store/...",
	"./internal/runtime/docker/...",
}

// rules name the guarded packages. Each is checked with every package of the
// module it imports, directly or not: a pure package cannot launder an import
// through a helper.
var rules = []struct {
	pkg       string   // relative to the module root
	forbidden []string // patterns, as in pure
	wallClock bool     // also forbid reading the wall clock (time.Now and the like)
}{
	{pkg: "internal/reconcile", forbidden: pure, wallClock: true},
	{pkg: "internal/scale", forbidden: pure, wallClock: true},
	{pkg: "internal/quarantine", forbidden: pure, wallClock: true},
	{pkg: "internal/breaker", forbidden: pure, wallClock: true},
	{pkg: "internal/rollout", forbidden: pure, wallClock: true},
	{pkg: "internal/chaos", forbidden: pure, wallClock: true},
	{pkg: "internal/place", forbidden: pure, wallClock: true},
	{pkg: "internal/nodes", forbidden: pure, wallClock: true},
	{pkg: "internal/cluster", forbidden: sdk},
	{pkg: "internal/spec", forbidden: pure},
	{pkg: "internal/runtime/fake", forbidden: pure, wallClock: true},
	// The loop meets the engine only through the runtime interface, and time only through its Clock.
	{pkg: "internal/supervisor", forbidden: sdk, wallClock: true},
	{pkg: "internal/api", forbidden: sdk},
	// Probes and log rules reach containers only through the runtime interface.
	{pkg: "internal/probe", forbidden: sdk},
	{pkg: "internal/logwatch", forbidden: sdk, wallClock: true},
	// The proxy reads time only through its Config.Clock: its waits and timeouts can be driven by a fake.
	{pkg: "internal/proxy", forbidden: sdk, wallClock: true},
	{pkg: "internal/store", forbidden: sdk},
	{pkg: "internal/store/etcd", forbidden: sdk},
	{pkg: "internal/metrics", forbidden: sdk},
	// Webhooks follow the journal; their grouping and retries wait only on Config.Clock.
	{pkg: "internal/notify", forbidden: sdk, wallClock: true},
	{pkg: "internal/access", forbidden: sdk},
}

// sdk is the Docker SDK, which only internal/runtime/docker may import.
var sdk = []string{"github.com/moby/...", "github.com/docker/...", "./internal/runtime/docker/..."}

// wallClock are the functions of package time that read the clock or wait on it.
var wallClock = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true,
}

func TestBoundaries(t *testing.T) {
	root, module := moduleRoot(t)
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			closure := moduleClosure(t, root, module, module+"/"+r.pkg)
			for _, pkg := range slices.Sorted(maps.Keys(closure)) {
				via := closure[pkg]
				p := importDir(t, root, module, pkg)
				for _, imp := range p.Imports {
					for _, pat := range r.forbidden {
						if matches(strings.Replace(pat, "./", module+"/", 1), imp) {
							t.Errorf("%s imports %s (forbidden by %s)", chain(module, via, pkg), imp, pat)
						}
					}
				}
			}
			if r.wallClock {
				for _, at := range wallClockCalls(t, filepath.Join(root, r.pkg)) {
					t.Errorf("%s: reads the wall clock; take `now` or a clock.Clock instead", at)
				}
			}
		})
	}
}

// matches reports whether path matches pattern, where only a trailing "/..." is special.
func matches(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return path == pattern
}

// moduleClosure returns pkg and every package of the module it imports,
// directly or not, each with the import path that led to it.
func moduleClosure(t *testing.T, root, module, pkg string) map[string][]string {
	t.Helper()
	seen := map[string][]string{pkg: nil}
	queue := []string{pkg}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, imp := range importDir(t, root, module, cur).Imports {
			if _, ok := seen[imp]; ok || !matches(module+"/...", imp) {
				continue
			}
			seen[imp] = append(append([]string(nil), seen[cur]...), cur)
			queue = append(queue, imp)
		}
	}
	return seen
}

func importDir(t *testing.T, root, module, pkg string) *build.Package {
	t.Helper()
	dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(pkg, module)))
	p, err := build.ImportDir(dir, 0)
	if err != nil {
		t.Fatalf("read package %s: %v", pkg, err)
	}
	return p
}

func chain(module string, via []string, pkg string) string {
	parts := make([]string, 0, len(via)+1)
	for _, p := range append(via, pkg) {
		parts = append(parts, strings.TrimPrefix(p, module+"/"))
	}
	return strings.Join(parts, " -> ")
}

// wallClockAllowed are the functions ("dir/file.go Func", dir the
// package's last element) of a guarded package that may read the wall
// clock: the one place each that hands the operating system an absolute
// time it needs (a socket deadline), never a wait or a `now` of the
// package's own.
var wallClockAllowed = map[string]bool{
	"proxy/deadline.go socketDeadline": true,
}

// wallClockCalls finds uses of the wall-clock functions of package time in the
// non-test Go files of dir, under whatever name the file imports time as.
func wallClockCalls(t *testing.T, dir string) []string {
	t.Helper()
	p, err := build.ImportDir(dir, 0)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var found []string
	fset := token.NewFileSet()
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		local := timeImportName(f)
		switch local {
		case "":
			continue
		case ".":
			found = append(found, fmt.Sprintf("%s: dot-imports time, which hides its clock reads", fset.Position(f.Package)))
			continue
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && wallClockAllowed[filepath.Base(dir)+"/"+name+" "+fd.Name.Name] {
				continue
			}
			ast.Inspect(d, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == local && wallClock[sel.Sel.Name] {
					found = append(found, fmt.Sprintf("%s: time.%s", fset.Position(sel.Pos()), sel.Sel.Name))
				}
				return true
			})
		}
	}
	return found
}

// timeImportName is the name under which f imports package time ("." for a
// dot import), or "" when it does not.
func timeImportName(f *ast.File) string {
	for _, imp := range f.Imports {
		if path, _ := strconv.Unquote(imp.Path.Value); path != "time" {
			continue
		}
		if imp.Name == nil {
			return "time"
		}
		if imp.Name.Name == "_" {
			return ""
		}
		return imp.Name.Name
	}
	return ""
}

// moduleRoot finds go.mod above the test's directory and reads the module path.
func moduleRoot(t *testing.T) (root, module string) {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			s := bufio.NewScanner(f)
			for s.Scan() {
				if m, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
					return dir, strings.Trim(strings.TrimSpace(m), `"`)
				}
			}
			t.Fatalf("%s/go.mod names no module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// TestPurePackagesLinkNoIO follows imports into the standard library and third
// parties too (TestBoundaries stops at the module's edge): the planner and the
// desired-state vocabulary must not link the network, processes or the compose
// and Docker libraries at all.
func TestPurePackagesLinkNoIO(t *testing.T) {
	root, module := moduleRoot(t)
	banned := []string{"net", "os/exec", "github.com/moby/...", "github.com/docker/...",
		"github.com/compose-spec/...", "go.etcd.io/..."}
	for _, pkg := range []string{"internal/reconcile", "internal/spec"} {
		cmd := exec.Command("go", "list", "-deps", "./"+pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if matches(b, dep) {
					t.Errorf("%s/%s links %s", module, pkg, dep)
				}
			}
		}
	}
}
