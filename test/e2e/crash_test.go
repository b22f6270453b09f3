package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestADamagedStoreIsRefusedThenRecoveredKeepingTheStack damages the store
// of a daemon that runs a stack (the project's desired state no longer
// decodes): the daemon refuses to start on it, says what is lost and how to
// go on, and leaves the file as it is; with --recover-store it starts,
// journals what was lost, and a `tend up` of the same file takes the
// running replicas back without starting one twice.
func TestADamagedStoreIsRefusedThenRecoveredKeepingTheStack(t *testing.T) {
	d := startDaemon(t)
	name, file := d.up(`
services:
  web:
    image: tend-demo:dev
    deploy: {replicas: 2}
    stop_grace_period: 1s
`)
	before := strings.Fields(projectContainers(t, name, "-q"))
	if len(before) != 2 {
		t.Fatalf("%d containers before, want 2", len(before))
	}
	d.stop()

	db := filepath.Join(d.data, "tend.db")
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	rec := []byte(`{"project":{"name":"` + name + `"`)
	if !bytes.Contains(b, rec) {
		t.Fatalf("the project's record is not in %s", db)
	}
	b = bytes.ReplaceAll(b, rec, append([]byte{0}, rec[1:]...)) // every copy: free pages hold older ones
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	serve := exec.CommandContext(ctx, tendBin, "serve", "--data", d.data, "--socket", d.socket)
	out, err := serve.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("tend serve on a damaged store: %v, want exit code 2\n%s", err, out)
	}
	for _, want := range []string{"is damaged", fmt.Sprintf("the desired state of project %q", name), "--recover-store"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("tend serve's refusal does not say %q:\n%s", want, out)
		}
	}
	if after, _ := os.ReadFile(db); !bytes.Equal(after, b) {
		t.Fatal("tend serve changed a store it refused")
	}

	d.flags = append(d.flags, "--recover-store")
	d.start()
	es := d.events("")
	if len(es) == 0 || es[len(es)-1].Action != "store-recovered" || !strings.Contains(es[len(es)-1].Message, name) {
		t.Fatalf("the journal's last entry is not the recovery naming %s: %+v", name, es[len(es)-1:])
	}
	if _, err := os.Stat(db + ".damaged"); err != nil {
		t.Errorf("the damaged file is not kept: %v", err)
	}
	d.mustTend("up", "-f", file, "-p", name, "--wait")
	after := strings.Fields(projectContainers(t, name, "-q"))
	if strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("containers after the recovery and up %v, want the same two %v: none started twice", after, before)
	}
}

// TestSIGKILLDuringUpScaleReplaceAndDownConverges runs bench/crash for a few
// iterations: tend's daemon SIGKILLed at a random moment of an operation,
// restarted, and after each restart the stack converges with no duplicate,
// no orphan and a journal that reads and numbers on (bench/README.md has
// the 200-iteration figures).
func TestSIGKILLDuringUpScaleReplaceAndDownConverges(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "crash")
	build := exec.Command("go", "build", "-o", bin, "./bench/crash")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build bench/crash: %v\n%s", err, out)
	}
	project := fmt.Sprintf("e2ecrash%d", rand.IntN(100000))
	t.Cleanup(func() { removeProject(project) })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-tend", tendBin, "-image", demoImage, "-project", project, "-iterations", "5")
	out, err := cmd.CombinedOutput()
	t.Logf("bench/crash:\n%s", out)
	if err != nil {
		t.Fatalf("bench/crash: %v", err)
	}
	if !strings.Contains(string(out), "numbered densely") {
		t.Errorf("bench/crash printed no journal check")
	}
}
