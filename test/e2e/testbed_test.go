package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/testbed"
)

// testbed is several Docker hosts on this machine (internal/testbed), each
// with a tend of the test's making in its network namespace, driving its engine.
type testbedT struct {
	t     *testing.T
	nodes []*tbNode
}

type tbNode struct {
	*testbed.Node
	t       *testing.T
	ip      string
	name    string
	tend    *exec.Cmd
	tendLog *lockedBuffer
	socket  string // tend's API socket
	data    string // tend's --data
}

var testbeds atomic.Int32

// lockedBuffer is a log read while its process still writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// imageTar is this run's demo image saved once, for loading into each node's engine.
var imageTar = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tend-e2e-image-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "demo.tar")
	if out, err := exec.Command("docker", "save", "-o", p, demoImage).CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker save: %v: %s", err, out)
	}
	return p, nil
})

func newTestbed(t *testing.T, n int, opts ...testbed.Option) *testbedT {
	t.Helper()
	tar, err := imageTar()
	if err != nil {
		t.Fatal(err)
	}
	k := int(testbeds.Add(1))
	// A /24 of 198.18.0.0/15 (the benchmarking range) per testbed of this run.
	tb, err := testbed.New(t.TempDir(), fmt.Sprintf("tb%d%d", os.Getpid()%10000, k), 100+(os.Getpid()+k)%150, n, tar, opts...)
	if err != nil {
		t.Fatal(err)
	}
	out := &testbedT{t: t}
	t.Cleanup(func() {
		for _, nd := range out.nodes {
			nd.stopTend(syscall.SIGTERM)
			if t.Failed() && nd.tendLog != nil {
				t.Logf("tend on %s:\n%s", nd.name, nd.tendLog.String())
			}
		}
		tb.Down()
	})
	for _, nd := range tb.Nodes {
		out.nodes = append(out.nodes, &tbNode{Node: nd, t: t, ip: nd.IP, name: nd.Name,
			socket: filepath.Join(nd.Dir, "tend.sock"), data: filepath.Join(nd.Dir, "tend")})
	}
	return out
}

// serve starts tend on this node, in its network namespace, on its engine.
func (nd *tbNode) serve(flags ...string) {
	t := nd.t
	t.Helper()
	nd.tendLog = &lockedBuffer{}
	nd.tend = nsCommand(nd, append([]string{"serve", "--data", nd.data, "--socket", nd.socket, "--node-name", nd.name}, flags...)...)
	nd.tend.Stdout, nd.tend.Stderr = nd.tendLog, nd.tendLog
	if err := nd.tend.Start(); err != nil {
		t.Fatalf("start tend on %s: %v", nd.name, err)
	}
	waitFor(t, 30*time.Second, "tend on "+nd.name, func() bool {
		_, _, code := nd.run("ps")
		return code == 0
	})
}

// nsCommand is tend with args in the node's network namespace, on its engine.
func nsCommand(nd *tbNode, args ...string) *exec.Cmd { return nd.Command(tendBin, args...) }

// run runs the CLI against this node's tend.
func (nd *tbNode) run(args ...string) (stdout, stderr string, code int) {
	return tendIn("", nd.socket, args...)
}

func (nd *tbNode) mustRun(args ...string) string {
	nd.t.Helper()
	out, errOut, code := nd.run(args...)
	if code != 0 {
		nd.t.Fatalf("tend %s on %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), nd.name, code, out, errOut)
	}
	return out
}

func (nd *tbNode) docker(args ...string) (string, error) { return nd.Docker(args...) }

// kill is a power loss: the engine and tend with it.
func (nd *tbNode) kill() {
	nd.Kill()
	nd.stopTend(syscall.SIGKILL)
}

func (nd *tbNode) cut()  { nd.Cut() }
func (nd *tbNode) heal() { nd.Heal() }

func (nd *tbNode) stopTend(sig syscall.Signal) {
	if nd.tend == nil || nd.tend.Process == nil {
		return
	}
	_ = nd.tend.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = nd.tend.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = nd.tend.Process.Kill()
		<-done
	}
	nd.tend = nil
}

// restart powers a killed node on again.
func (tb *testbedT) restart(nd *tbNode) {
	tb.t.Helper()
	if err := nd.Restart(); err != nil {
		tb.t.Fatal(err)
	}
}
