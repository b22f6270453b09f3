// Package e2e drives the real tend binary against the real Docker engine.
// These tests are required: without an engine they fail, never skip (except
// under -short, the quick unit-test loop).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tendBin is tend, and demoBin the demo's binary for its load mode (a
// load generator without the race detector, in a process of its own),
// both built for this run.
var tendBin, demoBin string

// demoImage is the demo image as this run built it, under a tag of its own:
// another run (or benchmark) on the same engine may build tend-demo:dev from
// other sources meanwhile. The tests' compose files and Dockerfiles say
// tend-demo:dev; project and writeFile put this tag in its place.
var demoImage = fmt.Sprintf("tend-demo:e2e-%d", os.Getpid())

// ownImage is s with this run's demo image for tend-demo:dev.
func ownImage(s string) string { return strings.ReplaceAll(s, "tend-demo:dev", demoImage) }

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped under -short")
		return 0
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.APIVersion}}").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the Docker engine is required and was not reachable: %v\n%s", err, out)
		return 1
	}
	dir, err := os.MkdirTemp("", "tend-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tendBin = filepath.Join(dir, "tend")
	root := repoRoot()
	build := exec.Command("go", "build", "-o", tendBin, "./cmd/tend")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static: tend's shim runs inside FROM-scratch replicas
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build tend: %v\n%s", err, out)
		return 1
	}
	demoBin = filepath.Join(dir, "demo")
	buildDemo := exec.Command("go", "build", "-o", demoBin, "./examples/demo")
	buildDemo.Dir = root
	buildDemo.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := buildDemo.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build the demo: %v\n%s", err, out)
		return 1
	}
	demo := exec.Command(filepath.Join(root, "examples/demo/build.sh"))
	demo.Env = append(os.Environ(), "DEMO_IMAGE="+demoImage)
	if out, err := demo.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build demo image: %v\n%s", err, out)
		return 1
	}
	defer exec.Command("docker", "rmi", demoImage).Run() // the tag; the image stays while others name it
	return m.Run()
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

// daemon is one `tend serve` process with its own data directory and socket.
type daemon struct {
	t      *testing.T
	data   string
	socket string
	cmd    *exec.Cmd
	log    *bytes.Buffer
	flags  []string // extra flags for tend serve
}

// Tests that load the host: the ones whose closed-loop clients keep the
// CPU busy while they measure response times or count failed requests
// (the autoscaler's pair and count test, the kill schedule under load),
// and the backoff test whose kills every 2 s need the engine to restart a
// replica within them, do not call t.Parallel, so Go runs each alone
// before the parallel tests. Run
// side by side on 2 cores (make test, 2026-12-07 20:52 UTC), two of them
// starved each other: the autoscaler at its max of 8 replicas measured p95
// 74 ms against a floor of 20, and the kill test's clients timed out
// together on requests sent before its first kill.
func startDaemon(t *testing.T, flags ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{t: t, data: filepath.Join(dir, "data"), socket: filepath.Join(dir, "tend.sock"), flags: flags}
	d.start()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() || os.Getenv("TEND_E2E_LOG") != "" {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	d.log = &bytes.Buffer{}
	d.cmd = exec.Command(tendBin, append([]string{"serve", "--data", d.data, "--socket", d.socket}, d.flags...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	// A test binary that dies (a timeout's panic) takes its daemons along:
	// an orphan would keep its containers and the heavy-run lock's descriptor.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start tend serve: %v", err)
	}
	waitFor(d.t, 10*time.Second, "daemon socket", func() bool {
		_, _, code := d.tend("ps")
		return code == 0
	})
}

// kill ends the daemon with SIGKILL: no clean-up of any kind.
func (d *daemon) kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
	d.cmd = nil
}

func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.t.Errorf("tend serve did not stop within 10s of SIGTERM")
		_ = d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
}

// tend runs the CLI against this daemon.
func (d *daemon) tend(args ...string) (stdout, stderr string, code int) {
	return tendIn("", d.socket, args...)
}

func tendIn(dir, socket string, args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tendBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TEND_SOCKET="+socket)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		code = -1
		e.WriteString(err.Error())
	}
	return o.String(), e.String(), code
}

func (d *daemon) mustTend(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.tend(args...)
	if code != 0 {
		d.t.Fatalf("tend %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

type replica struct {
	Project   string `json:"project"`
	Service   string `json:"service"`
	Slot      int    `json:"slot"`
	Container string `json:"container"`
	ID        string `json:"id"`
	State     string `json:"state"`
	Health    string `json:"health"`
	Live      string `json:"live"`
	Probe     string `json:"probe"`
	Note      string `json:"note"`
	Restarts  int    `json:"restarts"`
	ExitCode  int    `json:"exit_code"`
	Ready     bool   `json:"ready"`
}

func (d *daemon) ps(project string) []replica {
	d.t.Helper()
	var reps []replica
	out := d.mustTend("ps", "--json", "-p", project)
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		d.t.Fatalf("tend ps --json: %v\n%s", err, out)
	}
	return reps
}

type entry struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Project   string    `json:"project"`
	Service   string    `json:"service"`
	Slot      int       `json:"slot"`
	Container string    `json:"container"`
	Action    string    `json:"action"`
	Reason    string    `json:"reason"`
	Message   string    `json:"message"`
	Error     string    `json:"error"`
}

func (d *daemon) events(project string) []entry {
	d.t.Helper()
	out := d.mustTend("events", "--json", "-n", "0", "-p", project)
	var es []entry
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			d.t.Fatalf("tend events --json: line %q: %v", line, err)
		}
		es = append(es, e)
	}
	return es
}

func findEvent(es []entry, service, action, reason string) (entry, bool) {
	for _, e := range es {
		if e.Service == service && e.Action == action && (reason == "" || e.Reason == reason) {
			return e, true
		}
	}
	return entry{}, false
}

// project makes a unique project name and a compose file for it. At the end
// it stops the daemon first (so nothing heals the clean-up), then removes what
// the project left.
func (d *daemon) project(compose string) (name, file string) {
	t := d.t
	t.Helper()
	// Cut the test's name, not the random part: subtests of one long name
	// got the same project (and removed each other's containers).
	base := strings.ToLower(strings.NewReplacer("/", "", "_", "").Replace(t.Name()))
	name = fmt.Sprintf("e2e%.32s%d", base, rand.IntN(100000))
	file = filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(file, []byte(ownImage(compose)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop()
		removeProject(name)
	})
	return name, file
}

// up writes the compose text as a new project and brings it up with
// --wait: how most tests begin.
func (d *daemon) up(compose string) (name, file string) {
	d.t.Helper()
	name, file = d.project(compose)
	d.mustTend("up", "-f", file, "-p", name, "--wait")
	return name, file
}

func removeProject(name string) {
	ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=io.tend.project="+name).Output()
	if f := strings.Fields(string(ids)); len(f) > 0 {
		_ = exec.Command("docker", append([]string{"rm", "-f"}, f...)...).Run()
	}
	nets, _ := exec.Command("docker", "network", "ls", "-q", "--filter", "label=io.tend.project="+name).Output()
	if f := strings.Fields(string(nets)); len(f) > 0 {
		_ = exec.Command("docker", append([]string{"network", "rm"}, f...)...).Run()
	}
	vols, _ := exec.Command("docker", "volume", "ls", "-q", "--filter", "label=io.tend.project="+name).Output()
	if f := strings.Fields(string(vols)); len(f) > 0 {
		_ = exec.Command("docker", append([]string{"volume", "rm"}, f...)...).Run()
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func containerIP(t *testing.T, name string) string {
	t.Helper()
	return docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name)
}

// post sends a fault-switch request to the demo service in a container.
func post(t *testing.T, container, path string) {
	t.Helper()
	ip := strings.Fields(containerIP(t, container))[0]
	c := http.Client{Timeout: 3 * time.Second}
	var resp *http.Response
	var err error
	// A replica that just started may not listen yet: "running" is the
	// engine's word, and a service without a check is ready when running.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err = c.Post("http://"+ip+":8080"+path, "text/plain", nil)
		if err == nil || !strings.Contains(err.Error(), "connection refused") || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("POST %s to %s: %v", path, container, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func byName(reps []replica, container string) (replica, bool) {
	for _, r := range reps {
		if r.Container == container {
			return r, true
		}
	}
	return replica{}, false
}

// projectContainers lists the project's containers with `docker ps` and the given flags.
func projectContainers(t *testing.T, project string, flags ...string) string {
	t.Helper()
	return docker(t, append(append([]string{"ps"}, flags...), "--filter", "label=io.tend.project="+project)...)
}

// killRandomRunning SIGKILLs one of project's running containers, picked at
// random, and returns its name; false when none runs or the kill failed (it
// ended between the listing and the kill).
func killRandomRunning(t *testing.T, project string) (string, bool) {
	t.Helper()
	running := strings.Fields(docker(t, "ps", "--format", "{{.Names}}",
		"--filter", "label=io.tend.project="+project, "--filter", "status=running"))
	if len(running) == 0 {
		return "", false
	}
	victim := running[rand.IntN(len(running))]
	if err := exec.Command("docker", "kill", victim).Run(); err != nil {
		return "", false
	}
	return victim, true
}
