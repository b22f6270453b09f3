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
)

// A testbed is several Docker hosts on this machine. Each node is a network
// namespace with an address on a bridge that lives in a hub namespace of its
// own (so the host's iptables never see node-to-node traffic), and a dockerd
// in its own PID, mount and UTS namespaces with its own data root, socket and
// cgroup parent. tend runs in the node's network namespace, driving the
// node's engine. Killing a node (power loss) takes it off the bridge and
// kills its PID namespace's init, which ends everything in it; cutting one
// (a partition) only takes it off the bridge. Needs root, ip, nsenter,
// unshare, tini and dockerd: the machine's kind has them.
type testbed struct {
	t      *testing.T
	id     string // prefix of the namespaces and cgroups: unique per testbed on this host
	subnet string // the nodes' /24, as "198.18.N"
	root   string
	hub    string
	nodes  []*tbNode
}

type tbNode struct {
	tb      *testbed
	n       int // 1-based
	name    string
	ns      string // network namespace
	ip      string
	dir     string
	engine  *exec.Cmd // unshare ... dockerd: its process group is the node's power
	tend    *exec.Cmd
	tendLog *lockedBuffer
	socket  string // tend's API socket
	data    string // tend's --data
	killed  bool
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

func newTestbed(t *testing.T, n int) *testbed {
	t.Helper()
	k := int(testbeds.Add(1))
	tb := &testbed{t: t, id: fmt.Sprintf("tb%d%d", os.Getpid()%10000, k), root: t.TempDir()}
	// 198.18.0.0/15 is for benchmarks; a /24 of it per testbed of this run.
	tb.subnet = fmt.Sprintf("198.18.%d", 100+(os.Getpid()+k)%150)
	tb.hub = tb.id + "hub"
	t.Cleanup(tb.down)
	tb.ip("netns", "add", tb.hub)
	tb.ip("-n", tb.hub, "link", "set", "lo", "up")
	tb.ip("-n", tb.hub, "link", "add", "br0", "type", "bridge")
	tb.ip("-n", tb.hub, "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		nd := &tbNode{tb: tb, n: i, name: fmt.Sprintf("node%d", i), ns: fmt.Sprintf("%sn%d", tb.id, i),
			ip: fmt.Sprintf("%s.%d", tb.subnet, 10+i), dir: filepath.Join(tb.root, fmt.Sprintf("node%d", i))}
		nd.socket, nd.data = filepath.Join(nd.dir, "tend.sock"), filepath.Join(nd.dir, "tend")
		tb.nodes = append(tb.nodes, nd)
		tb.ip("netns", "add", nd.ns)
		tb.ip("-n", tb.hub, "link", "add", nd.veth(), "type", "veth", "peer", "name", "eth0", "netns", nd.ns)
		tb.ip("-n", tb.hub, "link", "set", nd.veth(), "master", "br0", "up")
		tb.ip("-n", nd.ns, "addr", "add", nd.ip+"/24", "dev", "eth0")
		tb.ip("-n", nd.ns, "link", "set", "eth0", "up")
		tb.ip("-n", nd.ns, "link", "set", "lo", "up")
		nd.startEngine()
	}
	tar, err := imageTar()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range tb.nodes {
		wg.Go(func() {
			if errs[i] = nd.waitEngine(); errs[i] == nil {
				if out, err := nd.docker("load", "-q", "-i", tar); err != nil {
					errs[i] = fmt.Errorf("%s: docker load: %v: %s", nd.name, err, out)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return tb
}

func (tb *testbed) ip(args ...string) {
	tb.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tb.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (nd *tbNode) veth() string { return fmt.Sprintf("%sv%d", nd.tb.id, nd.n) }

func (nd *tbNode) startEngine() {
	t := nd.tb.t
	for _, d := range []string{"data", "etc", "exec"} {
		if err := os.MkdirAll(filepath.Join(nd.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Each engine its own /etc/docker: Docker 20.10 keeps its engine ID in key.json there.
	script := fmt.Sprintf("hostname %s && mount -t tmpfs tmpfs /run && { [ ! -d /etc/docker ] || mount --bind %s /etc/docker; } && exec dockerd --data-root %s --exec-root %s -H unix://%s --pidfile %s --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent=/%s-%s",
		nd.name, filepath.Join(nd.dir, "etc"), filepath.Join(nd.dir, "data"), filepath.Join(nd.dir, "exec"),
		nd.engineSocket(), filepath.Join(nd.dir, "dockerd.pid"), nd.tb.id, nd.name)
	log, err := os.Create(filepath.Join(nd.dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	nd.engine = exec.Command("nsenter", "--net=/run/netns/"+nd.ns, "--", "unshare", "--pid", "--uts", "--mount",
		"--fork", "--kill-child", "--mount-proc", "--", "tini", "-s", "--", "sh", "-c", script)
	nd.engine.Stdout, nd.engine.Stderr = log, log
	nd.engine.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := nd.engine.Start(); err != nil {
		t.Fatalf("start %s's engine: %v", nd.name, err)
	}
	go func() { _ = nd.engine.Wait(); log.Close() }()
}

func (nd *tbNode) engineSocket() string { return filepath.Join(nd.dir, "docker.sock") }

func (nd *tbNode) waitEngine() error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := nd.docker("version", "--format", "{{.Server.Version}}"); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(nd.dir, "dockerd.log"))
	return fmt.Errorf("%s's engine did not answer within 60s:\n%s", nd.name, b)
}

// docker runs the docker CLI against this node's engine.
func (nd *tbNode) docker(args ...string) (string, error) {
	out, err := exec.Command("docker", append([]string{"-H", "unix://" + nd.engineSocket()}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// serve starts tend on this node, in its network namespace, on its engine.
func (nd *tbNode) serve(flags ...string) {
	t := nd.tb.t
	t.Helper()
	nd.tendLog = &lockedBuffer{}
	nd.tend = nsCommand(nd, append([]string{"serve", "--data", nd.data, "--socket", nd.socket, "--node-name", nd.name}, flags...)...)
	nd.tend.Stdout, nd.tend.Stderr = nd.tendLog, nd.tendLog
	nd.tend.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := nd.tend.Start(); err != nil {
		t.Fatalf("start tend on %s: %v", nd.name, err)
	}
	waitFor(t, 30*time.Second, "tend on "+nd.name, func() bool {
		_, _, code := nd.run("ps")
		return code == 0
	})
}

// nsCommand is tend with args in the node's network namespace, on its engine.
func nsCommand(nd *tbNode, args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + nd.ns, "--", tendBin}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+nd.engineSocket())
	return cmd
}

// run runs the CLI against this node's tend.
func (nd *tbNode) run(args ...string) (stdout, stderr string, code int) {
	return tendIn("", nd.socket, args...)
}

func (nd *tbNode) mustRun(args ...string) string {
	nd.tb.t.Helper()
	out, errOut, code := nd.run(args...)
	if code != 0 {
		nd.tb.t.Fatalf("tend %s on %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), nd.name, code, out, errOut)
	}
	return out
}

// kill is a power loss: off the network, then its engine's PID namespace
// and its tend killed at once.
func (nd *tbNode) kill() {
	nd.cut()
	if nd.engine != nil && nd.engine.Process != nil {
		_ = syscall.Kill(-nd.engine.Process.Pid, syscall.SIGKILL)
	}
	nd.stopTend(syscall.SIGKILL)
	nd.killed = true
}

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

// restart powers a killed node on again: back on the network, its engine
// started on the data it had.
func (tb *testbed) restart(nd *tbNode) {
	tb.t.Helper()
	nd.heal()
	_ = os.Remove(filepath.Join(nd.dir, "dockerd.pid")) // left by the power loss; dockerd refuses to start over one
	nd.startEngine()
	if err := nd.waitEngine(); err != nil {
		tb.t.Fatal(err)
	}
	nd.killed = false
}

// cut takes the node off the network (a partition); heal puts it back.
func (nd *tbNode) cut() {
	_ = exec.Command("ip", "-n", nd.tb.hub, "link", "set", nd.veth(), "nomaster").Run()
}
func (nd *tbNode) heal() {
	_ = exec.Command("ip", "-n", nd.tb.hub, "link", "set", nd.veth(), "master", "br0").Run()
}

func (tb *testbed) down() {
	for _, nd := range tb.nodes {
		nd.stopTend(syscall.SIGTERM)
		if tb.t.Failed() && nd.tendLog != nil {
			tb.t.Logf("tend on %s:\n%s", nd.name, nd.tendLog.String())
		}
	}
	for _, nd := range tb.nodes {
		if nd.engine != nil && nd.engine.Process != nil {
			_ = syscall.Kill(-nd.engine.Process.Pid, syscall.SIGKILL)
		}
	}
	// The engines' PID namespaces are gone once their inits are; then the
	// mounts under each data root (overlays, netns files) with them.
	time.Sleep(200 * time.Millisecond)
	for _, nd := range tb.nodes {
		_ = exec.Command("ip", "netns", "del", nd.ns).Run()
	}
	_ = exec.Command("ip", "netns", "del", tb.hub).Run()
	for _, ctl := range []string{"cpu", "cpuacct", "memory", "pids", "blkio", "devices", "freezer", "net_cls", "perf_event", "hugetlb", "cpuset", "net_prio", "systemd", "unified", ""} {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctl, tb.id+"-node*"))
		for _, m := range matches {
			_ = exec.Command("find", m, "-depth", "-type", "d", "-exec", "rmdir", "{}", "+").Run()
		}
	}
}
