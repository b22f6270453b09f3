// Package testbed runs several Docker hosts on this one machine, for the
// cluster's tests (test/e2e) and benchmarks (bench/cluster).
//
// Each node is a network namespace with an address on a bridge that lives in
// a hub namespace of its own (so the host's iptables never see node-to-node
// traffic), and a dockerd in its own PID, mount and UTS namespaces with its
// own data root, socket, /etc/docker and cgroup parent. Kill is a power loss:
// the node goes off the bridge and its PID namespace's init is killed, which
// ends everything in it. Cut is a partition: only off the bridge; its engine
// still answers on its socket, which is a file on this host. Needs root, ip,
// nsenter, unshare, tini and dockerd.
package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Testbed is a set of nodes on one bridge.
type Testbed struct {
	ID     string // prefix of its namespaces, links and cgroups: unique on this host
	Subnet string // the nodes' /24, as "198.18.N"
	Root   string
	hub    string
	Nodes  []*Node
	small  map[int]int // node -> MiB of the tmpfs its engine's data root is on
}

// Option changes a testbed.
type Option func(*Testbed)

// SmallDisk puts node n's engine data root on a tmpfs of mib MiB: a disk a
// test can fill.
func SmallDisk(n, mib int) Option { return func(tb *Testbed) { tb.small[n] = mib } }

// Node is one Docker host of a testbed.
type Node struct {
	tb           *Testbed
	N            int    // 1-based
	Name         string // node1, node2, ...
	NS           string // its network namespace
	IP           string
	Dir          string
	engine       *exec.Cmd // nsenter ... dockerd, its own process group: the node's power
	smallMounted bool
}

// DataRoot is the node's engine's data root.
func (nd *Node) DataRoot() string { return filepath.Join(nd.Dir, "data") }

// New makes n nodes under root, each with its engine running, and loads the
// images in tar (docker save) into every engine. id and subnet must be unique
// among the testbeds on this host. On error what was made is taken down.
func New(root, id string, subnet int, n int, tar string, opts ...Option) (_ *Testbed, err error) {
	tb := &Testbed{ID: id, Subnet: fmt.Sprintf("198.18.%d", subnet), Root: root, hub: id + "hub", small: map[int]int{}}
	for _, o := range opts {
		o(tb)
	}
	defer func() {
		if err != nil {
			tb.Down()
		}
	}()
	if err := ip("netns", "add", tb.hub); err != nil {
		return nil, err
	}
	// This host is on the bridge too, at .1: a test or benchmark reaches the nodes' addresses.
	for _, args := range [][]string{{"-n", tb.hub, "link", "set", "lo", "up"}, {"-n", tb.hub, "link", "add", "br0", "type", "bridge"}, {"-n", tb.hub, "link", "set", "br0", "up"},
		{"link", "add", id + "h", "type", "veth", "peer", "name", "host", "netns", tb.hub},
		{"addr", "add", tb.Subnet + ".1/24", "dev", id + "h"}, {"link", "set", id + "h", "up"},
		{"-n", tb.hub, "link", "set", "host", "master", "br0", "up"}} {
		if err := ip(args...); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= n; i++ {
		nd := &Node{tb: tb, N: i, Name: fmt.Sprintf("node%d", i), NS: fmt.Sprintf("%sn%d", id, i),
			IP: fmt.Sprintf("%s.%d", tb.Subnet, 10+i), Dir: filepath.Join(root, fmt.Sprintf("node%d", i))}
		tb.Nodes = append(tb.Nodes, nd)
		for _, args := range [][]string{
			{"netns", "add", nd.NS},
			{"-n", tb.hub, "link", "add", nd.veth(), "type", "veth", "peer", "name", "eth0", "netns", nd.NS},
			{"-n", tb.hub, "link", "set", nd.veth(), "master", "br0", "up"},
			{"-n", nd.NS, "addr", "add", nd.IP + "/24", "dev", "eth0"},
			{"-n", nd.NS, "link", "set", "eth0", "up"},
			{"-n", nd.NS, "link", "set", "lo", "up"},
		} {
			if err := ip(args...); err != nil {
				return nil, err
			}
		}
		if err := nd.startEngine(); err != nil {
			return nil, err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range tb.Nodes {
		wg.Go(func() {
			if errs[i] = nd.waitEngine(); errs[i] == nil && tar != "" {
				if out, err := nd.Docker("load", "-q", "-i", tar); err != nil {
					errs[i] = fmt.Errorf("%s: docker load: %v: %s", nd.Name, err, out)
				}
			}
		})
	}
	wg.Wait()
	return tb, errors.Join(errs...)
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (nd *Node) veth() string { return fmt.Sprintf("%sv%d", nd.tb.ID, nd.N) }

func (nd *Node) startEngine() error {
	for _, d := range []string{"data", "etc", "exec"} {
		if err := os.MkdirAll(filepath.Join(nd.Dir, d), 0o700); err != nil {
			return err
		}
	}
	if mib, ok := nd.tb.small[nd.N]; ok && !nd.smallMounted {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", mib), "tmpfs", nd.DataRoot()).CombinedOutput(); err != nil {
			return fmt.Errorf("mount a tmpfs for %s's data root: %v: %s", nd.Name, err, out)
		}
		nd.smallMounted = true
	}
	_ = os.Remove(filepath.Join(nd.Dir, "dockerd.pid")) // a power loss leaves it; dockerd refuses to start over one
	// Each engine its own /etc/docker: Docker 20.10 keeps its engine ID in key.json there.
	script := fmt.Sprintf("hostname %s && mount -t tmpfs tmpfs /run && { [ ! -d /etc/docker ] || mount --bind %s /etc/docker; } && exec dockerd --data-root %s --exec-root %s -H unix://%s --pidfile %s --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent=/%s-%s",
		nd.Name, filepath.Join(nd.Dir, "etc"), nd.DataRoot(), filepath.Join(nd.Dir, "exec"),
		nd.EngineSocket(), filepath.Join(nd.Dir, "dockerd.pid"), nd.tb.ID, nd.Name)
	log, err := os.OpenFile(filepath.Join(nd.Dir, "dockerd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	engine := exec.Command("nsenter", "--net=/run/netns/"+nd.NS, "--", "unshare", "--pid", "--uts", "--mount",
		"--fork", "--kill-child", "--mount-proc", "--", "tini", "-s", "--", "sh", "-c", script)
	engine.Stdout, engine.Stderr = log, log
	engine.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := engine.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s's engine: %w", nd.Name, err)
	}
	nd.engine = engine
	go func() { _ = engine.Wait(); log.Close() }() // this run's; a restart makes another
	return nil
}

// EngineSocket is the path of the node's engine's API socket.
func (nd *Node) EngineSocket() string { return filepath.Join(nd.Dir, "docker.sock") }

func (nd *Node) waitEngine() error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := nd.Docker("version", "--format", "{{.Server.Version}}"); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(nd.Dir, "dockerd.log"))
	return fmt.Errorf("%s's engine did not answer within 60s:\n%s", nd.Name, b)
}

// Docker runs the docker CLI against this node's engine.
func (nd *Node) Docker(args ...string) (string, error) {
	out, err := exec.Command("docker", append([]string{"-H", "unix://" + nd.EngineSocket()}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Command is a program run in the node's network namespace, on its engine
// (DOCKER_HOST): how tend runs on a node.
func (nd *Node) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + nd.NS, "--", name}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+nd.EngineSocket())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Kill is a power loss: off the network, then the engine's PID namespace
// killed. The caller kills what it ran on the node (its tend) at once too.
func (nd *Node) Kill() {
	nd.Cut()
	if nd.engine != nil && nd.engine.Process != nil {
		_ = syscall.Kill(-nd.engine.Process.Pid, syscall.SIGKILL)
	}
}

// Restart powers a killed node on again: on the network, its engine started
// on the data it had.
func (nd *Node) Restart() error {
	nd.Heal()
	if err := nd.startEngine(); err != nil {
		return err
	}
	return nd.waitEngine()
}

// Cut takes the node off the network (a partition); Heal puts it back.
func (nd *Node) Cut() { _ = ip("-n", nd.tb.hub, "link", "set", nd.veth(), "nomaster") }

// Heal puts a cut node back on the network.
func (nd *Node) Heal() { _ = ip("-n", nd.tb.hub, "link", "set", nd.veth(), "master", "br0") }

// Down kills every engine and removes the namespaces and cgroups; the
// caller removes Root.
func (tb *Testbed) Down() {
	for _, nd := range tb.Nodes {
		if nd.engine != nil && nd.engine.Process != nil {
			_ = syscall.Kill(-nd.engine.Process.Pid, syscall.SIGKILL)
		}
	}
	// The engines' mounts go with their mount namespaces once every process in them is gone.
	time.Sleep(200 * time.Millisecond)
	for _, nd := range tb.Nodes {
		_ = ip("netns", "del", nd.NS)
		if nd.smallMounted {
			_ = exec.Command("umount", "-l", nd.DataRoot()).Run()
		}
	}
	_ = ip("netns", "del", tb.hub) // and the host's end of its veth with it
	for _, ctl := range []string{"cpu", "cpuacct", "memory", "pids", "blkio", "devices", "freezer", "net_cls", "perf_event", "hugetlb", "cpuset", "net_prio", "systemd", "unified", ""} {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctl, tb.ID+"-node*"))
		for _, m := range matches {
			_ = exec.Command("find", m, "-depth", "-type", "d", "-exec", "rmdir", "{}", "+").Run()
		}
	}
}
