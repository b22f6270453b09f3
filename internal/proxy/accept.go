package proxy

import (
	"log/slog"
	"net"
	"sync"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/proxy/evloop"
)

// Connections of HTTP and Auto ports are accepted on the event loops
// (evloop.Listen), and an Auto port's are told apart there: a client whose
// HTTP request line is in when the connection is accepted becomes a loop
// client at once; one whose port's clients have always spoken first is
// watched on the loop (a sniffer) until its first bytes or clientFirstWait;
// every other connection goes to a goroutine (tcpRoute.handle), which does
// what the TCP path does, the rules of sniff.go and tcp.go unchanged.
// Measured (bench/README.md, 2026-12-07): accepted by a goroutine, a fresh
// HTTP connection of an Auto port cost a goroutine, a registration with
// Go's poller and its removal, a duplicate of the socket and the loop's
// wake-up before its first byte was read. Accepted on a loop, a client's
// request is seldom in yet (Go's client on loopback: 39 of 300 fresh
// connections in TestAutoFreshHTTPConnectionsCostNoEmptyBackendOnes, by a
// count not kept), so the sniffer is the common way in, not the exception.

// loopListener is a route's or a front's listener, whose connections the
// loops may accept in its place: closing it stops both, so the port is
// free when Close returns, as the Manager promises.
type loopListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	on     *evloop.Listening // the loops accepting, if they are
	done   chan struct{}     // closed by Close
}

func newLoopListener(ln net.Listener) *loopListener {
	return &loopListener{Listener: ln, done: make(chan struct{})}
}

// listen binds addr, for the loops to accept on.
func listen(addr string) (*loopListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return newLoopListener(ln), nil
}

// onLoops has the loops accept the listener's connections, giving each
// to accept; false: they do not (closed, or the loops failed to).
func (ll *loopListener) onLoops(l *loops, accept func(*evloop.Loop, int, net.Addr), log *slog.Logger) bool {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	if ll.closed || ll.on != nil {
		return false
	}
	g, err := l.eng.Listen(ll.Listener, accept)
	if err != nil {
		log.Error("proxy: listener on the event loops failed: accepting by goroutine", "err", err)
		return false
	}
	ll.on = g
	return true
}

// Close closes the listener and stops the loops accepting for it.
func (ll *loopListener) Close() error {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	err := ll.Listener.Close()
	if !ll.closed {
		ll.closed = true
		if ll.on != nil {
			ll.on.Close()
		}
		close(ll.done)
	}
	return err
}

// listenOnLoops has the loops accept s's connections (HTTP mode): every
// one is a loop client. ok false: they do not (s's listener is not
// listen's, or closed); done is closed with the listener.
func (s *httpServer) listenOnLoops(l *loops) (done <-chan struct{}, ok bool) {
	ll, _ := s.ln.(*loopListener)
	if ll == nil {
		return nil, false
	}
	ok = ll.onLoops(l, func(el *evloop.Loop, fd int, remote net.Addr) { s.openOn(el, fd, remote) }, s.log)
	return ll.done, ok
}

// openOn makes fd a client of s on el; on el.
func (s *httpServer) openOn(el *evloop.Loop, fd int, remote net.Addr) {
	s.loopConns.Add(1)
	el.Open(fd, remote, &client{srv: s})
}

// listenOnLoops has the loops accept ln's connections for t (Auto mode;
// a TCP route's all go to goroutines, which accept them themselves).
func (t *tcpRoute) listenOnLoops(ln net.Listener) (done <-chan struct{}, ok bool) {
	ll, _ := ln.(*loopListener)
	if ll == nil || t.http == nil {
		return nil, false
	}
	l, _ := theLoops()
	if l == nil {
		return nil, false
	}
	return ll.done, ll.onLoops(l, t.accepted, t.log)
}

// accepted is a new connection of an Auto port, on the loop el: an HTTP
// client (its request line in already) is the HTTP server's; a client of a
// port whose clients have always spoken first, silent so far, is watched
// on el; any other goes to a goroutine.
func (t *tcpRoute) accepted(el *evloop.Loop, fd int, remote net.Addr) {
	var buf [256]byte
	n, ok, err := peekFD(fd, buf[:])
	switch {
	case err == nil && n > 0 && sniff(buf[:n]) == sniffHTTP:
		t.clientFirst.Add(1)
		t.servedHTTP.Add(1)
		t.http.openOn(el, fd, remote)
	case err == nil && !ok && t.awaitsClient():
		el.Open(fd, remote, &sniffer{t: t})
	default:
		t.toGoroutine(fd, false)
	}
}

// toGoroutine hands fd to a goroutine of t's; waited: the client's
// clientFirstWait is over.
func (t *tcpRoute) toGoroutine(fd int, waited bool) {
	c, err := evloop.FileConn(fd)
	if err != nil {
		t.log.Warn("proxy: a new connection could not leave the event loop", "service", t.pool.service, "err", err)
		return
	}
	t.start(c, waited)
}

// sniffer is a new connection of an Auto port on a loop, whose client has
// not spoken yet: peeked at (never read) when its socket turns readable,
// it becomes a loop client when it speaks HTTP; anything else, or
// silence for clientFirstWait, sends it to a goroutine, the socket's
// bytes unread.
type sniffer struct {
	conn
	t     *tcpRoute
	timer clock.Timer
	done  bool // decided, or closed
}

func (s *sniffer) opened(c *evloop.Conn) evloop.Action {
	s.c = c
	c.SetPeekOnly(true)
	el := c.Loop()
	s.timer = s.t.pool.clk.AfterFunc(clientFirstWait, func() { el.Execute(s.silent) })
	return evloop.None
}

// traffic is the socket readable: bytes, or the client's end.
func (s *sniffer) traffic() evloop.Action {
	var buf [256]byte
	n, ok, err := s.c.PeekSocket(buf[:])
	if !ok || s.done {
		return evloop.None
	}
	if err == nil && n > 0 && sniff(buf[:n]) == sniffHTTP {
		s.decided()
		s.t.clientFirst.Add(1)
		s.t.servedHTTP.Add(1)
		srv := s.t.http
		cl := &client{srv: srv}
		srv.loopConns.Add(1)
		s.c.SetContext(cl)
		s.c.SetPeekOnly(false) // the loop reads it now, for the client
		cl.c, cl.ls = s.c, sharedLoops.state(s.c.Loop())
		return cl.call(cl.opened)
	}
	// Other bytes, a partial request line, the end: the goroutine's
	// sniff decides, as for a connection it accepted itself.
	return s.call(func() { s.leave(false) })
}

// silent is clientFirstWait over with no byte from the client.
func (s *sniffer) silent() {
	if !s.done {
		s.leave(true)
	}
}

// leave sends the connection to a goroutine.
func (s *sniffer) leave(waited bool) {
	s.decided()
	fd, err := s.c.Dup()
	s.close()
	if err == nil {
		s.t.toGoroutine(fd, waited)
	}
}

func (s *sniffer) decided() {
	s.done = true
	s.timer.Stop()
}

// closed is the socket closed on the loop (by leave, or an error).
func (s *sniffer) closed() {
	if !s.done {
		s.decided()
	}
}
