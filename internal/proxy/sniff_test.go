package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/testwait"
)

func TestSniff(t *testing.T) {
	for _, c := range []struct {
		in   string
		want sniffVerdict
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", sniffHTTP},
		{"POST /api?q=1 HTTP/1.0\r\n", sniffHTTP},
		{"GET / HTTP/1.1\n", sniffHTTP}, // a bare LF, which servers accept
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", sniffHTTP},
		{"OPTIONS * HTTP/1.1\r\n", sniffHTTP},
		{"PROPFIND /dav HTTP/1.1\r\n", sniffHTTP},
		{"GET /" + strings.Repeat("a", sniffMax), sniffHTTP}, // too long to wait for: the HTTP server answers it
		{"", sniffMore},
		{"G", sniffMore},
		{"GET", sniffMore},
		{"GET /index.html HTT", sniffMore},
		{"GET / HTTP/1.1", sniffMore},
		{"GET / HTTP/1.1\r", sniffMore},
		{"GET key\r\n", sniffOther},          // Redis' inline protocol
		{"*1\r\n$4\r\nPING\r\n", sniffOther}, // Redis
		{"PING\r\n", sniffOther},
		{"\x16\x03\x01\x02\x00", sniffOther},             // a TLS ClientHello
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", sniffOther}, // PostgreSQL's SSLRequest
		{"get / HTTP/1.1\r\n", sniffOther},
		{"GET  / HTTP/1.1\r\n", sniffOther},
		{"GET / HTTP/x.1\r\n", sniffOther},
		{"GET / HTTP/1.1\rX", sniffOther},
		{"GET / FTP/1.1\r\n", sniffOther},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n", sniffOther},
	} {
		if got := sniff([]byte(c.in)); got != c.want {
			t.Errorf("sniff(%.40q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestAutoServesHTTPClientsInHTTPMode: on a port nobody declared, a client
// that speaks HTTP gets HTTP mode: a replica's 503 is retried on another,
// X-Forwarded-For is set, and the port says it served HTTP.
func TestAutoServesHTTPClientsInHTTPMode(t *testing.T) {
	h := newHarness(t, Config{})
	var hits counter
	fwd := backendServer(t, "web/2", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "web/2 for "+r.Header.Get("X-Forwarded-For"))
	})
	r := routeOf(t, "web", Auto, backendServer(t, "web/1", failing(503, &hits)), fwd)
	h.sync(r)
	for i := range 20 {
		// A new connection each time, so that each is sniffed.
		req, _ := http.NewRequest("GET", url(r), nil)
		req.Close = true
		resp, body := h.send(req)
		if resp.StatusCode != 200 || string(body) != "web/2 for 127.0.0.1" {
			t.Fatalf("request %d: %d %q, want web/2's answer (503s retried, X-Forwarded-For set)", i, resp.StatusCode, body)
		}
	}
	if hits.get() == 0 {
		t.Fatal("the failing replica got no request: was the port balanced at all?")
	}
	if ps := portsOf(h.m, "web"); len(ps) != 1 || ps[0].Mode != Auto || ps[0].HTTPConns != 20 || ps[0].TCPConns != 0 {
		t.Fatalf("ports %+v, want one auto port with 20 HTTP connections", ps)
	}
}

// TestAutoServesH2C: a client speaking cleartext HTTP/2 with prior
// knowledge on an undeclared port gets HTTP/2.
func TestAutoServesH2C(t *testing.T) {
	h := newHarness(t, Config{})
	r := routeOf(t, "web", Auto, backendServer(t, "web/1", named("web/1", nil)))
	h.sync(r)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &protos}, Timeout: testwait.For}
	resp, err := c.Get(url(r))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || !strings.Contains(string(b), "web/1") {
		t.Fatalf("%s %d %q, want HTTP/2 200 from web/1", resp.Proto, resp.StatusCode, b)
	}
}

// greeter is a server-first backend: it greets each connection at once,
// then echoes lines prefixed with its name.
func greeter(t *testing.T, name string) Backend {
	addr := rawServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(testwait.For))
		io.WriteString(c, "220 "+name+" ready\r\n")
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			io.WriteString(c, name+": "+sc.Text()+"\r\n")
		}
	})
	return Backend{ID: "id-" + name, Replica: name, Addr: addr, Ready: true}
}

// TestAutoServerFirst: a backend that speaks first (as MySQL, SMTP, SSH
// do) greets a client that waits for it, through an undeclared port.
func TestAutoServerFirst(t *testing.T) {
	h := newHarness(t, Config{})
	r := routeOf(t, "mail", Auto, greeter(t, "mail/1"))
	h.sync(r)
	c := dial(t, r.Listen.String())
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || line != "220 mail/1 ready\r\n" {
		t.Fatalf("greeting %q, %v", line, err)
	}
	io.WriteString(c, "HELO x\r\n")
	if line, err := br.ReadString('\n'); err != nil || line != "mail/1: HELO x\r\n" {
		t.Fatalf("answer %q, %v", line, err)
	}
	if ps := portsOf(h.m, "mail"); len(ps) != 1 || ps[0].TCPConns != 1 || ps[0].HTTPConns != 0 {
		t.Fatalf("ports %+v, want one connection served as TCP", ps)
	}
}

// TestAutoClientFirstOther: a client that speaks first, but not HTTP
// (Redis), is spliced as TCP, its first bytes included.
func TestAutoClientFirstOther(t *testing.T) {
	h := newHarness(t, Config{})
	r := routeOf(t, "cache", Auto, tcpBackend(t, "cache/1"))
	h.sync(r)
	if got, err := roundTrip(t, r.Listen.String(), "GET key\r\n"); err != nil || got != "cache/1: GET key\r\n" {
		t.Fatalf("%q, %v", got, err)
	}
}

// TestTCPFailsOverAReplicaThatDiesBeforeAByte: a replica that accepts and
// then closes before it has said anything (killed as the client
// connects), while the client has said nothing either, costs that client
// nothing: the connection goes to another replica.
func TestTCPFailsOverAReplicaThatDiesBeforeAByte(t *testing.T) {
	for _, mode := range []Mode{TCP, Auto} {
		t.Run(mode.String(), func(t *testing.T) {
			h := newHarness(t, Config{EjectAfter: 1000})
			dying := rawServer(t, func(c net.Conn) {}) // accepts, closes
			r := routeOf(t, "mail", mode, Backend{ID: "dying", Replica: "mail/1", Addr: dying, Ready: true}, greeter(t, "mail/2"))
			h.sync(r)
			for i := range 20 {
				c := dial(t, r.Listen.String())
				line, err := bufio.NewReader(c).ReadString('\n')
				c.Close()
				if err != nil || line != "220 mail/2 ready\r\n" {
					t.Fatalf("connection %d: %q, %v; want mail/2's greeting", i, line, err)
				}
			}
		})
	}
}

// TestNoReplicaClosesCleanly: with no replica within the hold, a client of
// an undeclared port is closed, not reset and not left hanging, even one
// that sent bytes; an HTTP client gets its 503.
func TestNoReplicaClosesCleanly(t *testing.T) {
	h := newHarness(t, Config{Hold: 100 * time.Millisecond})
	r := routeOf(t, "db", Auto)
	h.sync(r)
	for _, first := range []string{"", "*1\r\n$4\r\nPING\r\n"} {
		c := dial(t, r.Listen.String())
		io.WriteString(c, first)
		c.SetReadDeadline(time.Now().Add(testwait.For))
		n, err := c.Read(make([]byte, 1))
		if n != 0 || err != io.EOF {
			if errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("after %q: reset, want a clean close", first)
			} else {
				t.Errorf("after %q: %d bytes, %v; want the end of the connection", first, n, err)
			}
		}
		c.Close()
	}
	if code, _ := h.get(url(r)); code != 503 {
		t.Fatalf("an HTTP client got %d, want 503", code)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testwait.For))
	return c
}

func portsOf(m *Manager, service string) []PortStats {
	for _, s := range m.Stats() {
		if s.Service == service {
			return s.Ports
		}
	}
	return nil
}

// TestAutoFreshHTTPConnectionsCostNoEmptyBackendOnes: a port whose clients
// speak first waits for them before dialling a backend, so fresh HTTP
// connections do not each open (and drop) one to a replica.
func TestAutoFreshHTTPConnectionsCostNoEmptyBackendOnes(t *testing.T) {
	h := newHarness(t, Config{})
	var conns counter
	srv := httptest.NewUnstartedServer(named("web/1", nil))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.inc()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	r := routeOf(t, "web", Auto, Backend{ID: "a", Replica: "web/1", Addr: mustAddrPort(srv.Listener.Addr()), Ready: true})
	h.sync(r)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: testwait.For}
	for i := range 300 {
		resp, err := c.Get(url(r))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
	}
	if n := conns.get(); n > 30 {
		t.Fatalf("300 fresh client connections opened %d to the replica; want the loops' few kept-alive ones", n)
	}
}
