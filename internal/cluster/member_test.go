package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/nodes"
)

// freePorts picks a join, client and peer port free on every 127.0.0.x.
func freePorts(t *testing.T) Ports {
	t.Helper()
	var ps []int
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
		defer l.Close()
	}
	return Ports{Join: ps[0], Client: ps[1], Peer: ps[2]}
}

type running struct {
	*Member
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func (r *running) stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
		r.Close()
	})
}

func start(t *testing.T, cfg Config) (*running, error) {
	t.Helper()
	m, err := Start(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Member: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(r.stop)
	return r, nil
}

func waitNodes(t *testing.T, m *Member, what string, ok func([]nodes.Status) bool) []nodes.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all, err := m.Nodes(context.Background())
		if err == nil && ok(all) {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v %v", what, all, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stateOf(all []nodes.Status, name string) nodes.State {
	for _, s := range all {
		if s.Name == name {
			return s.State
		}
	}
	return ""
}

// TestJoinAndJudge forms a cluster of a manager, a worker and a second
// manager on loopback addresses, with real etcd and TLS, and checks who may
// join, what `node ls` shows, and that a node that stops beating is down.
func TestJoinAndJudge(t *testing.T) {
	ports := freePorts(t)
	cfg := func(name, addr string) Config {
		return Config{Dir: t.TempDir(), Name: name, Advertise: addr, Ports: ports, Log: slog.New(slog.NewTextHandler(os.Stderr, nil)).With("on", name)}
	}
	c1 := cfg("m1", "127.0.0.1")
	c1.Init = true
	m1, err := start(t, c1)
	if err != nil {
		t.Fatal(err)
	}
	wtok, err := m1.JoinToken(context.Background(), nodes.Worker)
	if err != nil {
		t.Fatal(err)
	}
	mtok, err := m1.JoinToken(context.Background(), nodes.Manager)
	if err != nil || mtok == wtok {
		t.Fatalf("manager token %q (%v), worker token %q", mtok, err, wtok)
	}
	join := fmt.Sprintf("127.0.0.1:%d", ports.Join)

	// Refused: a token of the right form but a wrong secret; a worker token for a manager.
	bad := cfg("w9", "127.0.0.9")
	bad.Join, bad.Token = join, wtok[:len(wtok)-4]+"beef"
	if _, err := start(t, bad); errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("join with a wrong secret: %v, want unauthenticated", err)
	}
	bad.Token = "TEND1-" + strings.Repeat("0", 64) + wtok[len(wtok)-33:]
	if _, err := start(t, bad); errs.KindOf(err) != errs.Unauthenticated || !strings.Contains(err.Error(), "not of the token's cluster") {
		t.Errorf("join with another cluster's CA hash: %v", err)
	}
	bad.Token, bad.Manager = wtok, true
	if _, err := start(t, bad); errs.KindOf(err) != errs.Forbidden {
		t.Errorf("join as a manager with a worker token: %v, want forbidden", err)
	}

	cw := cfg("w1", "127.0.0.2")
	cw.Join, cw.Token = join, wtok
	w1, err := start(t, cw)
	if err != nil {
		t.Fatal(err)
	}
	c2 := cfg("m2", "127.0.0.3")
	c2.Join, c2.Token, c2.Manager = join, mtok, true
	m2, err := start(t, c2)
	if err != nil {
		t.Fatal(err)
	}
	all := waitNodes(t, m2.Member, "three nodes judged ready", func(all []nodes.Status) bool {
		judged := 0
		for _, s := range all {
			if s.State == nodes.Ready && s.Since.After(s.Joined) {
				judged++
			}
		}
		return judged == 3
	})
	if all[0].Role != nodes.Manager || all[2].Name != "w1" || all[2].Role != nodes.Worker || all[2].Address != "127.0.0.2" {
		t.Errorf("node ls %+v", all)
	}
	leaders := 0
	for _, s := range all {
		if s.Leader {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders: %+v", leaders, all)
	}
	if _, err := w1.JoinToken(context.Background(), nodes.Worker); errs.KindOf(err) != errs.Conflict {
		t.Errorf("a worker gave a join token: %v", err)
	}

	// The worker stops beating: down after the TTL, as seen from either manager.
	w1.stop()
	stopped := time.Now()
	waitNodes(t, m1.Member, "w1 down", func(all []nodes.Status) bool { return stateOf(all, "w1") == nodes.Down })
	// Its last beat was up to one Beat before it stopped.
	if took := time.Since(stopped); took < DefaultTTL-DefaultBeat || took > DefaultTTL+2*time.Second {
		t.Errorf("w1 judged down %s after it stopped, want about %s", took, DefaultTTL)
	}

	// It rejoins from its files, with neither --join nor a token.
	cw.Join, cw.Token = "", ""
	if _, err := start(t, cw); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	waitNodes(t, m2.Member, "w1 ready again", func(all []nodes.Status) bool { return stateOf(all, "w1") == nodes.Ready })
	cw.Init = true
	if _, err := Start(context.Background(), cw); errs.KindOf(err) != errs.Conflict {
		t.Errorf("--cluster-init on a node of a cluster: %v", err)
	}
}
