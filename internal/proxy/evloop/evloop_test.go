package evloop

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// lineEcho answers every complete line it has with the line upper-cased,
// leaving a partial line for the next read; "close\n" closes from the
// callback, "big\n" answers with more than a socket buffer takes at once.
type lineEcho struct {
	mu     sync.Mutex
	closed []error
	done   chan struct{}
}

func (h *lineEcho) OnOpen(c *Conn) Action { return None }

func (h *lineEcho) OnTraffic(c *Conn) Action {
	for {
		buf := c.Peek()
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return None
		}
		line := string(buf[:i])
		c.Discard(i + 1)
		switch line {
		case "close":
			return Close
		case "big":
			c.Write(bytes.Repeat([]byte("x"), 8<<20))
			c.Write([]byte("\n"))
		default:
			c.Write(bytes.ToUpper([]byte(line + "\n")))
		}
	}
}

func (h *lineEcho) OnClose(c *Conn, err error) {
	h.mu.Lock()
	h.closed = append(h.closed, err)
	h.mu.Unlock()
	h.done <- struct{}{}
}

// serve starts an engine with h and returns a client connection enrolled
// on it.
func serve(t *testing.T, h Handler) net.Conn {
	t.Helper()
	e, err := Start(2, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Enroll(server, "ctx"); err != nil {
		t.Fatal(err)
	}
	client.SetDeadline(time.Now().Add(20 * time.Second))
	return client
}

func readLine(t *testing.T, r io.Reader) string {
	t.Helper()
	var out []byte
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatalf("read: %v (after %d bytes)", err, len(out))
		}
		if b[0] == '\n' {
			return string(out)
		}
		out = append(out, b[0])
	}
}

func TestLinesSplitAcrossReadsAreKeptUntilComplete(t *testing.T) {
	h := &lineEcho{done: make(chan struct{}, 1)}
	c := serve(t, h)
	c.Write([]byte("hel"))
	time.Sleep(20 * time.Millisecond) // its own read
	c.Write([]byte("lo\nwor"))
	if got := readLine(t, c); got != "HELLO" {
		t.Fatalf("got %q, want HELLO", got)
	}
	c.Write([]byte("ld\nagain\n"))
	for _, want := range []string{"WORLD", "AGAIN"} {
		if got := readLine(t, c); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestAWriteLargerThanTheSocketTakesGoesOutWhole(t *testing.T) {
	h := &lineEcho{done: make(chan struct{}, 1)}
	c := serve(t, h)
	c.Write([]byte("big\nafter\n"))
	time.Sleep(100 * time.Millisecond) // the loop is left with most of it to send
	n, err := io.CopyN(io.Discard, c, 8<<20)
	if err != nil || n != 8<<20 {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if got := readLine(t, c); got != "" {
		t.Fatalf("got %q after the big answer, want its newline", got)
	}
	if got := readLine(t, c); got != "AFTER" {
		t.Fatalf("got %q, want AFTER: answers stay in order behind a pending write", got)
	}
}

func TestClosingFromTheCallbackAndByThePeerReachOnClose(t *testing.T) {
	h := &lineEcho{done: make(chan struct{}, 1)}
	c := serve(t, h)
	c.Write([]byte("close\n"))
	<-h.done
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read after close: %v, want EOF", err)
	}

	c2 := serve(t, h)
	c2.Write([]byte("hi\n"))
	readLine(t, c2)
	c2.Close()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnClose after the peer closed")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed[0] != nil || h.closed[1] != nil {
		t.Fatalf("OnClose errors %v, want nil for a close by the handler and a clean end", h.closed)
	}
}

// waker records the goroutine-free calls Execute and Wake make.
type waker struct {
	conns  chan *Conn
	wakes  chan string
	closed chan struct{}
}

func (w *waker) OnOpen(c *Conn) Action { w.conns <- c; return None }
func (w *waker) OnTraffic(c *Conn) Action {
	w.wakes <- string(c.Peek())
	return None
}
func (w *waker) OnClose(c *Conn, err error) { close(w.closed) }

func TestExecuteAndWakeRunOnTheLoop(t *testing.T) {
	w := &waker{conns: make(chan *Conn, 1), wakes: make(chan string, 4), closed: make(chan struct{})}
	client := serve(t, w)
	c := <-w.conns
	ran := make(chan bool)
	c.Loop().Execute(func() { ran <- c.Context() == "ctx" })
	if !<-ran {
		t.Fatal("the task did not see the connection's context")
	}
	c.Wake()
	if got := <-w.wakes; got != "" {
		t.Fatalf("a wake with nothing read gave %q", got)
	}
	client.Write([]byte("x"))
	if got := <-w.wakes; got != "x" {
		t.Fatalf("got %q, want x", got)
	}
	c.Wake() // "x" was not discarded: it is there again
	if got := <-w.wakes; got != "x" {
		t.Fatalf("got %q on a wake, want the unread x", got)
	}
	c.Loop().Execute(func() { c.Loop().Close(c) })
	<-w.closed
}

// laterEcho echoes the first line in its callback and the rest from a
// task, as the proxy serves a pipelined request once the answer to the
// one before it comes in on another connection.
type laterEcho struct{}

func (laterEcho) OnOpen(c *Conn) Action { return None }

func (laterEcho) OnTraffic(c *Conn) Action {
	echoLine(c)
	c.Loop().Execute(func() {
		for echoLine(c) {
		}
	})
	return None
}

func (laterEcho) OnClose(c *Conn, err error) {}

func echoLine(c *Conn) bool {
	buf := c.Peek()
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return false
	}
	line := append([]byte(nil), buf[:i+1]...)
	c.Discard(i + 1)
	c.Write(line)
	return true
}

func TestBytesDiscardedOutsideTheCallbackStayDiscarded(t *testing.T) {
	c := serve(t, laterEcho{})
	c.Write([]byte("a\nb\n"))
	for _, want := range []string{"a", "b"} {
		if got := readLine(t, c); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	c.Write([]byte("c\n"))
	if got := readLine(t, c); got != "c" {
		t.Fatalf("got %q after c was sent, want c: b came back", got)
	}
}
