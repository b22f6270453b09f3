package evloop

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// peekFirst is lineEcho for connections opened in peek mode: it looks at
// the first bytes without reading them, then lets the loop read.
type peekFirst struct {
	lineEcho
	peeked chan string
}

func (h *peekFirst) OnOpen(c *Conn) Action {
	c.SetPeekOnly(c.Context() == "peek")
	return None
}

func (h *peekFirst) OnTraffic(c *Conn) Action {
	if c.Context() == "peek" {
		var buf [64]byte
		n, ok, err := c.PeekSocket(buf[:])
		if !ok || err != nil {
			return None
		}
		h.peeked <- string(buf[:n])
		c.SetContext("read")
		c.SetPeekOnly(false)
		return None
	}
	return h.lineEcho.OnTraffic(c)
}

func TestListenAcceptsOnTheLoopsUntilClosed(t *testing.T) {
	h := &peekFirst{lineEcho: lineEcho{done: make(chan struct{}, 4)}, peeked: make(chan string, 4)}
	e, err := Start(2, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g, err := e.Listen(ln, func(l *Loop, fd int, remote net.Addr) {
		if remote == nil {
			t.Error("no remote address")
		}
		l.Open(fd, remote, "peek")
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello\n"))
	select {
	case got := <-h.peeked:
		if got != "hello\n" {
			t.Fatalf("peeked %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not accepted on a loop")
	}
	// What was peeked is still there for the loop to read.
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "HELLO\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}

	g.Close()
	ln.Close()
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("a connection was taken after Close")
	}
}
