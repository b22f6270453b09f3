package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/testbed"
)

type nodeRow struct {
	Name    string    `json:"name"`
	Address string    `json:"address"`
	Role    string    `json:"role"`
	State   string    `json:"state"`
	Leader  bool      `json:"leader"`
	Joined  time.Time `json:"joined"`
	Since   time.Time `json:"since"`
}

func (nd *tbNode) nodes() ([]nodeRow, error) {
	out, errOut, code := nd.run("node", "ls", "--json")
	if code != 0 {
		return nil, &cliError{errOut}
	}
	var rows []nodeRow
	return rows, json.Unmarshal([]byte(out), &rows)
}

type cliError struct{ msg string }

func (e *cliError) Error() string { return e.msg }

func rowOf(rows []nodeRow, name string) nodeRow {
	for _, r := range rows {
		if r.Name == name {
			return r
		}
	}
	return nodeRow{}
}

func leaderOf(rows []nodeRow) string {
	for _, r := range rows {
		if r.Leader {
			return r.Name
		}
	}
	return ""
}

// lastLine is the token `tend cluster join-token` prints alone on its last line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestClusterMembership forms a cluster of four hosts, each its own Docker
// engine in its own namespaces: three managers (etcd members) and a worker,
// joined with the tokens as a user would. node ls shows them from any
// manager; a worker that loses power is down within the heartbeat TTL; a
// leader that loses power is replaced by another manager, which judges it
// down; a host with a wrong token cannot join.
func TestClusterMembership(t *testing.T) {
	tb := newTestbed(t, 5)
	n1, n2, n3, n4, n5 := tb.nodes[0], tb.nodes[1], tb.nodes[2], tb.nodes[3], tb.nodes[4]
	n1.serve("--cluster-init", "--advertise", n1.ip)
	mtok := lastLine(n1.mustRun("cluster", "join-token", "--manager"))
	wtok := lastLine(n1.mustRun("cluster", "join-token"))
	if !strings.HasPrefix(wtok, "TEND1-") || wtok == mtok {
		t.Fatalf("join tokens %q and %q", wtok, mtok)
	}
	n2.serve("--join", n1.ip, "--token", mtok, "--advertise", n2.ip, "--manager")
	n3.serve("--join", n1.ip, "--token", mtok, "--advertise", n3.ip, "--manager")
	n4.serve("--join", n2.ip, "--token", wtok, "--advertise", n4.ip) // any manager admits

	// A wrong secret: tend serve exits at once, saying why.
	bad := wtok[:len(wtok)-4] + "0000"
	if bad == wtok {
		bad = wtok[:len(wtok)-4] + "1111"
	}
	out, err := nsCommand(n5, "serve", "--data", n5.data, "--socket", n5.socket, "--node-name", n5.name,
		"--join", n1.ip, "--token", bad, "--advertise", n5.ip).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not valid for this cluster") {
		t.Errorf("join with a wrong token: %v\n%s", err, out)
	}

	var rows []nodeRow
	waitFor(t, 20*time.Second, "four nodes ready, one leader", func() bool {
		rows, err = n3.nodes()
		ready := 0
		for _, r := range rows {
			if r.State == "ready" {
				ready++
			}
		}
		return err == nil && len(rows) == 4 && ready == 4 && leaderOf(rows) != ""
	})
	for _, r := range rows {
		want := "manager"
		if r.Name == n4.name {
			want = "worker"
		}
		if r.Role != want || r.Address != tb.nodes[int(r.Name[4]-'1')].ip {
			t.Errorf("node ls row %+v, want role %s", r, want)
		}
	}
	if leaderOf(rows) != n1.name {
		t.Errorf("leader %s, want the first manager, %s", leaderOf(rows), n1.name)
	}
	table := n4.mustRun("node", "ls") // a worker's socket serves node ls too
	if !strings.Contains(table, "NAME") || !strings.Contains(table, n4.ip) {
		t.Errorf("node ls table:\n%s", table)
	}
	if _, errOut, code := n4.run("cluster", "join-token"); code == 0 || !strings.Contains(errOut, "worker") {
		t.Errorf("a worker printed a join token (exit %d): %s", code, errOut)
	}

	// The worker loses power.
	n4.kill()
	lost := time.Now()
	waitFor(t, 10*time.Second, "node4 down", func() bool {
		rows, err = n2.nodes()
		return err == nil && rowOf(rows, n4.name).State == "down"
	})
	t.Logf("a worker's power loss: judged down after %s", time.Since(lost).Round(time.Millisecond))

	// The leader loses power: another manager leads and judges it down.
	n1.kill()
	lost = time.Now()
	var elected time.Duration
	waitFor(t, 20*time.Second, "a new leader, node1 down", func() bool {
		rows, err = n3.nodes()
		if err != nil {
			return false
		}
		if l := leaderOf(rows); l != "" && l != n1.name && elected == 0 {
			elected = time.Since(lost)
		}
		return elected != 0 && rowOf(rows, n1.name).State == "down"
	})
	t.Logf("the leader's power loss: %s leads after %s; node1 judged down after %s", leaderOf(rows),
		elected.Round(time.Millisecond), time.Since(lost).Round(time.Millisecond))
	if s := rowOf(rows, n4.name).State; s != "down" {
		t.Errorf("node4 is %s under the new leader, want down", s)
	}
	if s := rowOf(rows, n2.name).State; s != "ready" {
		t.Errorf("node2 is %s, want ready", s)
	}
	// A manager restarted with neither --join nor a token rejoins from its files.
	n2.stopTend(syscall.SIGTERM)
	n2.serve()
	waitFor(t, 20*time.Second, "node2 back", func() bool {
		rows, err = n2.nodes()
		return err == nil && rowOf(rows, n2.name).State == "ready" && leaderOf(rows) != ""
	})
}

// answering are the hostnames (replicas) that answered n GETs of / at addr.
func answering(addr string, n int) map[string]bool {
	out := map[string]bool{}
	c := http.Client{Timeout: 2 * time.Second}
	for range n {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			continue
		}
		var body struct {
			Hostname string `json:"hostname"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) == nil && resp.StatusCode == 200 {
			out[body.Hostname] = true
		}
		resp.Body.Close()
	}
	return out
}

// running lists the names of the project's running containers on a node's engine.
func (nd *tbNode) running(project string) []string {
	out, err := nd.docker("ps", "--filter", "label=io.tend.project="+project, "--filter", "status=running", "--format", "{{.Names}}")
	if err != nil || out == "" {
		return nil
	}
	return strings.Fields(out)
}

// TestClusterNodeLoss: a project brought up on a manager of three hosts has
// its replicas spread, one per node; when a node loses power its replica is
// placed on another node and runs there, journaled with the cause; when the
// node comes back, it does not run the moved replica a second time.
func TestClusterNodeLoss(t *testing.T) {
	tb := newTestbed(t, 3)
	n1, n2, n3 := tb.nodes[0], tb.nodes[1], tb.nodes[2]
	n1.serve("--cluster-init", "--advertise", n1.ip)
	wtok := lastLine(n1.mustRun("cluster", "join-token"))
	n2.serve("--join", n1.ip, "--token", wtok, "--advertise", n2.ip)
	n3.serve("--join", n1.ip, "--token", wtok, "--advertise", n3.ip)
	name := "spread"
	file := filepath.Join(t.TempDir(), "compose.yaml")
	writeFile(t, file, `
services:
  web:
    image: tend-demo:dev
    deploy: {replicas: 3}
    ports: ["18080:8080"]
    x-tend:
      readiness:
        http: {port: 8080, path: /health}
        interval: 250ms
`)
	n1.mustRun("up", "-f", file, "-p", name)
	waitFor(t, 60*time.Second, "one replica running on each node", func() bool {
		return len(n1.running(name)) == 1 && len(n2.running(name)) == 1 && len(n3.running(name)) == 1
	})
	moved := n2.running(name)[0] // e.g. spread-web-2
	// The published port answers on every node, from the replicas of all three.
	waitFor(t, 20*time.Second, "node3's published port answering from replicas on three nodes", func() bool {
		return len(answering(n3.ip+":18080", 30)) == 3
	})
	// tend ps on any node shows every replica with its node.
	waitFor(t, 15*time.Second, "ps on node3 showing the three replicas on three nodes", func() bool {
		out, _, code := n3.run("ps", "--json", "-p", name)
		var reps []struct {
			Node      string `json:"node"`
			Container string `json:"container"`
			State     string `json:"state"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &reps) != nil || len(reps) != 3 {
			return false
		}
		nodes := map[string]bool{}
		for _, r := range reps {
			if r.State == "running" && r.Container != "" {
				nodes[r.Node] = true
			}
		}
		return len(nodes) == 3
	})

	n2.kill()
	lost := time.Now()
	waitFor(t, 30*time.Second, moved+" running on another node", func() bool {
		for _, nd := range []*tbNode{n1, n3} {
			if slices.Contains(nd.running(name), moved) {
				return true
			}
		}
		return false
	})
	t.Logf("a node's power loss: its replica %s running elsewhere after %s", moved, time.Since(lost).Round(time.Millisecond))
	waitFor(t, 20*time.Second, "node1's published port answering from three replicas again", func() bool {
		return len(answering(n1.ip+":18080", 30)) == 3
	})
	events := n1.mustRun("events", "-p", name)
	if !strings.Contains(events, "node-down") || !strings.Contains(events, "node2") {
		t.Errorf("the journal does not tell the move and its cause:\n%s", events)
	}

	// node2 comes back with its engine and the replica the engine kept:
	// tend on it removes that one, which runs elsewhere now.
	tb.restart(n2)
	n2.serve()
	waitFor(t, 30*time.Second, "node2 ready, without the moved replica", func() bool {
		rows, err := n1.nodes()
		out, _ := n2.docker("ps", "-a", "--filter", "label=io.tend.project="+name, "--format", "{{.Names}}")
		return err == nil && rowOf(rows, n2.name).State == "ready" && out == ""
	})
	total := len(n1.running(name)) + len(n2.running(name)) + len(n3.running(name))
	if total != 3 {
		t.Errorf("%d replicas run across the nodes, want 3", total)
	}

	// Drain node3: its replica moves to another node; node ls says draining.
	n1.mustRun("node", "drain", n3.name)
	waitFor(t, 30*time.Second, "node3 drained", func() bool {
		rows, err := n2.nodes()
		return err == nil && rowOf(rows, n3.name).State == "draining" && len(n3.running(name)) == 0 &&
			len(n1.running(name))+len(n2.running(name)) == 3
	})
	n1.mustRun("node", "uncordon", n3.name)
	waitFor(t, 10*time.Second, "node3 ready again", func() bool {
		rows, err := n1.nodes()
		return err == nil && rowOf(rows, n3.name).State == "ready"
	})
	if events := n1.mustRun("events", "-p", name); !strings.Contains(events, "drain") {
		t.Errorf("the journal does not tell the drain's moves:\n%s", events)
	}
}

// TestClusterPartition: a worker cut off from the managers stops its replica
// before the leader places it elsewhere, so the replica never runs on two
// nodes at once; once healed, the worker runs its share again and nothing twice.
func TestClusterPartition(t *testing.T) {
	tb := newTestbed(t, 3)
	n1, n2, n3 := tb.nodes[0], tb.nodes[1], tb.nodes[2]
	n1.serve("--cluster-init", "--advertise", n1.ip)
	wtok := lastLine(n1.mustRun("cluster", "join-token"))
	n2.serve("--join", n1.ip, "--token", wtok, "--advertise", n2.ip)
	n3.serve("--join", n1.ip, "--token", wtok, "--advertise", n3.ip)
	name := "fence"
	file := filepath.Join(t.TempDir(), "compose.yaml")
	writeFile(t, file, `
services:
  web:
    image: tend-demo:dev
    deploy: {replicas: 3}
`)
	n1.mustRun("up", "-f", file, "-p", name)
	waitFor(t, 60*time.Second, "one replica running on each node", func() bool {
		return len(n1.running(name)) == 1 && len(n2.running(name)) == 1 && len(n3.running(name)) == 1
	})
	cutOff := n2.running(name)[0]

	n2.cut()
	cut := time.Now()
	var stoppedAt, elsewhereAt time.Duration
	twice := 0
	waitFor(t, 30*time.Second, cutOff+" stopped on node2 and running elsewhere", func() bool {
		// The cut-off engine's socket still answers: it is local.
		here := slices.Contains(n2.running(name), cutOff)
		there := slices.Contains(n1.running(name), cutOff) || slices.Contains(n3.running(name), cutOff)
		if here && there {
			twice++
		}
		if !here && stoppedAt == 0 {
			stoppedAt = time.Since(cut)
		}
		if there && elsewhereAt == 0 {
			elsewhereAt = time.Since(cut)
		}
		return !here && there
	})
	t.Logf("partition: the cut-off replica stopped after %s, running elsewhere after %s", stoppedAt.Round(time.Millisecond), elsewhereAt.Round(time.Millisecond))
	if twice > 0 || stoppedAt > elsewhereAt {
		t.Errorf("%s ran on two nodes at once (%d samples; stopped on node2 after %s, running elsewhere after %s)", cutOff, twice, stoppedAt, elsewhereAt)
	}
	if !strings.Contains(n2.tendLog.String(), "fenced") {
		t.Errorf("node2's tend did not say it fenced itself")
	}

	n2.heal()
	waitFor(t, 30*time.Second, "node2 ready again, the moved replica gone from it", func() bool {
		rows, err := n1.nodes()
		out, _ := n2.docker("ps", "-a", "--filter", "name="+cutOff, "--format", "{{.Names}}")
		return err == nil && rowOf(rows, n2.name).State == "ready" && out == ""
	})
	total := len(n1.running(name)) + len(n2.running(name)) + len(n3.running(name))
	if total != 3 {
		t.Errorf("%d replicas run across the nodes, want 3", total)
	}
}

// TestClusterDiskPressure: a node whose disk fills is drained before it
// fails, its replica moved to another node, journaled with the figures; once
// the space is back (past the hysteresis) it takes replicas again.
func TestClusterDiskPressure(t *testing.T) {
	tb := newTestbed(t, 3, testbed.SmallDisk(3, 400))
	n1, n2, n3 := tb.nodes[0], tb.nodes[1], tb.nodes[2]
	n1.serve("--cluster-init", "--advertise", n1.ip)
	wtok := lastLine(n1.mustRun("cluster", "join-token"))
	n2.serve("--join", n1.ip, "--token", wtok, "--advertise", n2.ip)
	n3.serve("--join", n1.ip, "--token", wtok, "--advertise", n3.ip)
	name := "disk"
	file := filepath.Join(t.TempDir(), "compose.yaml")
	writeFile(t, file, "services:\n  web:\n    image: tend-demo:dev\n    deploy: {replicas: 3}\n")
	n1.mustRun("up", "-f", file, "-p", name)
	waitFor(t, 60*time.Second, "one replica running on each node", func() bool {
		return len(n1.running(name)) == 1 && len(n2.running(name)) == 1 && len(n3.running(name)) == 1
	})

	// Fill node3's disk to 3 % free.
	var st syscall.Statfs_t
	if err := syscall.Statfs(n3.DataRoot(), &st); err != nil {
		t.Fatal(err)
	}
	fill := int64(st.Bavail)*int64(st.Bsize) - int64(st.Blocks)*int64(st.Bsize)*3/100
	ballast := filepath.Join(n3.DataRoot(), "ballast")
	if err := os.WriteFile(ballast, make([]byte, fill), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "node3 drained, its replica on another node", func() bool {
		rows, err := n1.nodes()
		return err == nil && rowOf(rows, n3.name).State == "draining" && len(n3.running(name)) == 0 &&
			len(n1.running(name))+len(n2.running(name)) == 3
	})
	if events := n1.mustRun("events"); !strings.Contains(events, "node-drain") || !strings.Contains(events, "disk free") {
		t.Errorf("the journal does not tell the drain and its figures:\n%s", events)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "node3 ready again", func() bool {
		rows, err := n1.nodes()
		return err == nil && rowOf(rows, n3.name).State == "ready"
	})
	if events := n1.mustRun("events"); !strings.Contains(events, "pressure-relieved") {
		t.Errorf("the journal does not tell the undrain:\n%s", events)
	}
}
