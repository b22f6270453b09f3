package proxy

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/testwait"
)

// tcpBackend answers each connection, once the client has finished
// sending, with its name and what it read, then closes.
func tcpBackend(t *testing.T, name string) Backend {
	addr := rawServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(testwait.For))
		b, err := io.ReadAll(c) // until the client's half-close
		if err != nil {
			return
		}
		io.WriteString(c, name+": "+string(b))
	})
	return Backend{ID: "id-" + name, Replica: name, Addr: addr, Ready: true}
}

// roundTrip sends msg, half-closes, and reads the answer to the end.
func roundTrip(t *testing.T, addr, msg string) (string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testwait.For))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestTCPSplicesWithHalfClose(t *testing.T) {
	h := newHarness(t, Config{})
	r := routeOf(t, "db", TCP, tcpBackend(t, "db/1"))
	h.sync(r)
	big := strings.Repeat("x", 1<<20)
	got, err := roundTrip(t, r.Listen.String(), big)
	if err != nil || got != "db/1: "+big {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	testwait.Eventually(t, "the connection to end", func() bool { return inflight(h.m, "db") == 0 })
	if s := h.m.Stats(); len(s) != 1 || s[0].Rate <= 0 || s[0].P50 != 0 {
		t.Fatalf("stats %+v", s)
	}
	if m := scrape(t, h.m.Handler()); !strings.Contains(m, `tend_proxy_tcp_connections_total{project="p",replica="db/1",service="db"} 1`) {
		t.Fatalf("metrics lack the connection:\n%s", m)
	}
}

func TestTCPRetriesAFailedDial(t *testing.T) {
	h := newHarness(t, Config{})
	dead := Backend{ID: "dead", Replica: "db/1", Addr: deadAddr(t), Ready: true}
	r := routeOf(t, "db", TCP, dead, tcpBackend(t, "db/2"))
	h.sync(r)
	for i := range 20 {
		if got, err := roundTrip(t, r.Listen.String(), "hi"); err != nil || got != "db/2: hi" {
			t.Fatalf("connection %d: %q, %v", i, got, err)
		}
	}
}

func TestTCPWithoutBackendCloses(t *testing.T) {
	h := newFakeHarness(t, Config{})
	r := routeOf(t, "db", TCP)
	h.sync(r)
	got := make(chan string, 1)
	go func() { s, _ := roundTrip(t, r.Listen.String(), "hi"); got <- s }()
	h.held(r, 1) // waits for a replica, within the hold
	h.clk.Advance(2 * time.Second)
	if s := wait(t, got, "the connection to close"); s != "" {
		t.Fatalf("got %q from nowhere", s)
	}
	// All backends dead: the client is closed too.
	r.Backends = []Backend{{ID: "dead", Replica: "db/1", Addr: deadAddr(t), Ready: true}}
	h.sync(r)
	go func() { s, _ := roundTrip(t, r.Listen.String(), "hi"); got <- s }()
	// Refused, it is dialled again after pauses, within the hold: let the
	// clock run until the client is closed.
	var s string
	testwait.Eventually(t, "the connection to close", func() bool {
		h.clk.Advance(connectPause)
		select {
		case s = <-got:
			return true
		default:
			return false
		}
	})
	if s != "" {
		t.Fatalf("got %q from a dead backend", s)
	}
}

func TestTCPDrainWaitsForTheConnection(t *testing.T) {
	h := newHarness(t, Config{})
	be := tcpBackend(t, "db/1")
	r := routeOf(t, "db", TCP, be)
	h.sync(r)
	c, err := net.Dial("tcp", r.Listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "hi")
	testwait.Eventually(t, "the connection to be counted", func() bool { return inflight(h.m, "db") == 1 })
	drained := make(chan struct{})
	go func() { h.m.Drain(t.Context(), be.ID); close(drained) }()
	select {
	case <-drained:
		t.Fatal("Drain returned with a connection open")
	case <-time.After(50 * time.Millisecond):
	}
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(testwait.For))
	if b, _ := io.ReadAll(c); string(b) != "db/1: hi" {
		t.Fatalf("the drained connection got %q", b)
	}
	wait(t, drained, "Drain to return")
}

// TestTCPRunCutsOpenConnections: a connection still open when Run ends is
// cut after the grace period, and Run returns.
func TestTCPRunCutsOpenConnections(t *testing.T) {
	h := newHarness(t, Config{Grace: 50 * time.Millisecond})
	r := routeOf(t, "db", TCP, tcpBackend(t, "db/1"))
	h.sync(r)
	c, err := net.Dial("tcp", r.Listen.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() }) // runs after the harness stopped Run
	io.WriteString(c, "hi")
	testwait.Eventually(t, "the connection to be counted", func() bool { return inflight(h.m, "db") == 1 })
}
