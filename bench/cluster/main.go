// Command cluster measures the hardware level on several Docker hosts on this
// machine (internal/testbed): how long after a node's power loss all of its
// replicas run on other nodes, and for how long a partitioned node's replica
// runs twice (on the cut-off node and on the node it was moved to). tend at
// its defaults against Swarm at its defaults and with a 1 s dispatcher
// heartbeat, one run, the same testbed recipe, the same service (the demo
// image, no health check, N replicas over three nodes), the same victim (a
// worker, node3).
//
// Usage (as root, from the repository; see bench/README.md):
//
//	go run ./bench/cluster -tend /tmp/tend -rounds 3
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tend-sh/tend/internal/testbed"
)

type peer struct {
	name string
	// form makes the cluster on the testbed and starts n replicas; it
	// returns a stop func for what it started on the nodes.
	form func(tb *testbed.Testbed, n int) (stop func(), err error)
	// slots tells, by node, the slots whose replica runs there.
	slots func(nd *testbed.Node) []string
}

func main() {
	tend := flag.String("tend", "", "the tend binary (static)")
	image := flag.String("image", "tend-demo:dev", "the demo image, on this host's engine")
	rounds := flag.Int("rounds", 3, "node losses per peer")
	replicas := flag.Int("replicas", 6, "replicas of the service")
	partition := flag.Duration("partition", 30*time.Second, "how long a node is cut off, per peer (longer than Swarm takes to call it down)")
	flag.Parse()
	if *tend == "" {
		fmt.Fprintln(os.Stderr, "cluster: -tend BIN")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "tendbench-cluster-")
	check(err)
	defer os.RemoveAll(dir)
	tar := filepath.Join(dir, "image.tar")
	out, err := exec.Command("docker", "save", "-o", tar, *image).CombinedOutput()
	check(wrap(err, out))

	peers := []peer{tendPeer(*tend, *image), swarmPeer("swarm", "5s", *image), swarmPeer("swarm-hb1s", "1s", *image)}
	type result struct {
		loss    []time.Duration
		twice   time.Duration
		stopped time.Duration // partition: when the cut-off node had stopped its replicas (0: never)
	}
	results := map[string]*result{}
	k := 0
	run := func(p peer, what string, measure func(tb *testbed.Testbed) error) {
		k++
		root := filepath.Join(dir, fmt.Sprintf("%s-%d", p.name, k))
		tb, err := testbed.New(root, fmt.Sprintf("cb%d%d", os.Getpid()%1000, k), 60+k%40, 3, tar)
		if err != nil {
			fmt.Printf("  %s %s: testbed: %v\n", p.name, what, err)
			return
		}
		defer tb.Down()
		stop, err := p.form(tb, *replicas)
		if stop != nil {
			defer stop()
		}
		if err == nil {
			err = waitFor(90*time.Second, func() bool {
				total := 0
				for _, nd := range tb.Nodes {
					total += len(p.slots(nd))
				}
				return total == *replicas && len(p.slots(tb.Nodes[2])) > 0
			})
		}
		if err == nil {
			err = measure(tb)
		}
		if err != nil {
			fmt.Printf("  %s %s: %v\n", p.name, what, err)
		}
	}
	for _, p := range peers {
		r := &result{}
		results[p.name] = r
		for i := range *rounds {
			run(p, "node loss", func(tb *testbed.Testbed) error {
				victim := tb.Nodes[2]
				lost := p.slots(victim)
				t0 := time.Now()
				victim.Kill()
				err := waitFor(120*time.Second, func() bool {
					var elsewhere []string
					for _, nd := range tb.Nodes[:2] {
						elsewhere = append(elsewhere, p.slots(nd)...)
					}
					for _, s := range lost {
						if !slices.Contains(elsewhere, s) {
							return false
						}
					}
					return true
				})
				d := time.Since(t0)
				if err != nil {
					return fmt.Errorf("round %d: %d replicas of the lost node not running elsewhere after %s", i+1, len(lost), d.Round(time.Millisecond))
				}
				r.loss = append(r.loss, d)
				fmt.Printf("  %-10s node loss, round %d: %d replicas of node3 running elsewhere after %s\n", p.name, i+1, len(lost), d.Round(time.Millisecond))
				return nil
			})
		}
		run(p, "partition", func(tb *testbed.Testbed) error {
			victim := tb.Nodes[2]
			cut := p.slots(victim)
			victim.Cut()
			t0 := time.Now()
			var twice time.Duration
			last := t0
			for time.Since(t0) < *partition {
				here := p.slots(victim)
				var there []string
				for _, nd := range tb.Nodes[:2] {
					there = append(there, p.slots(nd)...)
				}
				now := time.Now()
				for _, s := range cut {
					if slices.Contains(here, s) && slices.Contains(there, s) {
						twice += now.Sub(last)
						break
					}
				}
				if len(here) == 0 && r.stopped == 0 {
					r.stopped = now.Sub(t0)
				}
				last = now
				time.Sleep(50 * time.Millisecond)
			}
			victim.Heal()
			r.twice = twice
			fmt.Printf("  %-10s partition of %s: a replica ran on two nodes for %s; the cut-off node stopped its replicas after %s\n",
				p.name, *partition, twice.Round(time.Millisecond), orNever(r.stopped))
			return nil
		})
	}
	fmt.Printf("\n%-11s %-7s %-44s %s\n", "peer", "rounds", "node loss: its replicas elsewhere after", "partition: a replica ran on two nodes for")
	for _, p := range peers {
		r := results[p.name]
		fmt.Printf("%-11s %-7d %-44s %s\n", p.name, len(r.loss), spread(r.loss)+" (median, min-max)", r.twice.Round(time.Millisecond))
	}
}

func orNever(d time.Duration) string {
	if d == 0 {
		return "never (not within the partition)"
	}
	return d.Round(time.Millisecond).String()
}

func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%s (%s-%s)", s[len(s)/2].Round(time.Millisecond), s[0].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

func waitFor(limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func wrap(err error, out []byte) error {
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// running are the names of the running containers on a node with label.
func running(nd *testbed.Node, label string) []string {
	out, err := nd.Docker("ps", "--filter", "label="+label, "--filter", "status=running", "--format", "{{.Names}}")
	if err != nil || out == "" {
		return nil
	}
	return strings.Fields(out)
}

func tendPeer(bin, image string) peer {
	const project = "bench"
	return peer{
		name: "tend",
		form: func(tb *testbed.Testbed, n int) (func(), error) {
			var procs []*exec.Cmd
			stop := func() {
				for _, p := range procs {
					_ = p.Process.Signal(syscall.SIGTERM)
					_ = p.Wait()
				}
			}
			sock := func(nd *testbed.Node) string { return filepath.Join(nd.Dir, "tend.sock") }
			cli := func(nd *testbed.Node, args ...string) (string, error) {
				out, err := exec.Command(bin, append([]string{"--socket", sock(nd)}, args...)...).CombinedOutput()
				return strings.TrimSpace(string(out)), wrap(err, out)
			}
			start := func(nd *testbed.Node, flags ...string) error {
				cmd := nd.Command(bin, append([]string{"serve", "--data", filepath.Join(nd.Dir, "tend"), "--socket", sock(nd), "--node-name", nd.Name}, flags...)...)
				log, err := os.Create(filepath.Join(nd.Dir, "tend.log"))
				if err != nil {
					return err
				}
				cmd.Stdout, cmd.Stderr = log, log
				if err := cmd.Start(); err != nil {
					return err
				}
				procs = append(procs, cmd)
				return waitFor(30*time.Second, func() bool { _, err := cli(nd, "ps"); return err == nil })
			}
			n1 := tb.Nodes[0]
			if err := start(n1, "--cluster-init", "--advertise", n1.IP); err != nil {
				return stop, err
			}
			out, err := cli(n1, "cluster", "join-token")
			if err != nil {
				return stop, err
			}
			lines := strings.Split(out, "\n")
			tok := lines[len(lines)-1]
			for _, nd := range tb.Nodes[1:] {
				if err := start(nd, "--join", n1.IP, "--token", tok, "--advertise", nd.IP); err != nil {
					return stop, err
				}
			}
			file := filepath.Join(tb.Root, "compose.yaml")
			if err := os.WriteFile(file, fmt.Appendf(nil, "services:\n  web:\n    image: %s\n    deploy: {replicas: %d}\n", image, n), 0o644); err != nil {
				return stop, err
			}
			_, err = cli(n1, "up", "-f", file, "-p", project)
			return stop, err
		},
		slots: func(nd *testbed.Node) []string { return running(nd, "io.tend.project="+project) }, // bench-web-N: the slot's name
	}
}

func swarmPeer(name, heartbeat, image string) peer {
	return peer{
		name: name,
		form: func(tb *testbed.Testbed, n int) (func(), error) {
			n1 := tb.Nodes[0]
			if out, err := n1.Docker("swarm", "init", "--advertise-addr", n1.IP, "--dispatcher-heartbeat", heartbeat); err != nil {
				return nil, fmt.Errorf("swarm init: %v: %s", err, out)
			}
			tok, err := n1.Docker("swarm", "join-token", "-q", "worker")
			if err != nil {
				return nil, err
			}
			for _, nd := range tb.Nodes[1:] {
				if out, err := nd.Docker("swarm", "join", "--token", tok, "--advertise-addr", nd.IP, n1.IP+":2377"); err != nil {
					return nil, fmt.Errorf("swarm join: %v: %s", err, out)
				}
			}
			out, err := n1.Docker("service", "create", "--detach", "--name", "web", "--replicas", fmt.Sprint(n), image)
			return nil, wrap(err, []byte(out))
		},
		// Task containers are named web.SLOT.TASKID: the slot is web.SLOT.
		slots: func(nd *testbed.Node) []string {
			var out []string
			for _, c := range running(nd, "com.docker.swarm.service.name=web") {
				parts := strings.SplitN(c, ".", 3)
				if len(parts) >= 2 {
					out = append(out, parts[0]+"."+parts[1])
				}
			}
			return out
		},
	}
}
