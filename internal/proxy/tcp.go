package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// tcpRoute accepts a route's connections, unless the route is HTTP, and
// serves each by who speaks first (sniff.go): a client that speaks HTTP
// on an Auto route goes to the HTTP server; any other connection is
// spliced to a backend, both ways, until both sides have finished.
type tcpRoute struct {
	pool   *pool
	dialer *net.Dialer
	log    *slog.Logger
	http   *httpServer // Auto mode: where clients that speak HTTP go; nil in TCP mode

	// Connections by the mode they were served in, for Stats.
	servedHTTP, servedTCP atomic.Uint64
	// Connections by who spoke first, for awaitClient.
	clientFirst, serverFirst atomic.Uint64

	ctx context.Context // the base of every connection's dials (serve's)

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // client connections, to cut at stop
	closed bool
	wg     sync.WaitGroup // connection handlers
}

func newTCPRoute(p *pool, dialer *net.Dialer, log *slog.Logger) *tcpRoute {
	return &tcpRoute{pool: p, dialer: dialer, log: log, conns: make(map[net.Conn]struct{})}
}

// serve accepts until ln is closed (on the loops, for an Auto route:
// accept.go). ctx is the base of every connection's
// dials.
func (t *tcpRoute) serve(ctx context.Context, ln net.Listener) error {
	t.ctx = ctx
	if done, ok := t.listenOnLoops(ln); ok {
		<-done
		return nil
	}
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("proxy: accept failed", "service", t.pool.service, "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return nil
			case <-t.pool.clk.After(delay):
			}
			continue
		}
		delay = 0
		t.start(c, false)
	}
}

// start serves c on a goroutine of its own, unless t is closed; waited:
// c's client was given clientFirstWait already (on a loop).
func (t *tcpRoute) start(c net.Conn, waited bool) {
	if !t.track(c) {
		c.Close()
		return
	}
	go t.handle(t.ctx, c, waited)
}

// track keeps c, to cut at stop, with its handler counted in wg.
func (t *tcpRoute) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	return true
}

func (t *tcpRoute) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// cut closes every client connection, which ends their handlers, and
// refuses new ones.
func (t *tcpRoute) cut() {
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
}

// idle reports whether no connection is open.
func (t *tcpRoute) idle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns) == 0
}

// handle serves one client connection.
func (t *tcpRoute) handle(ctx context.Context, c net.Conn, waited bool) {
	defer t.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("proxy: tcp connection handler panicked", "service", t.pool.service, "panic", r)
		}
	}()
	if t.http != nil && t.speaksHTTPNow(c) {
		t.clientFirst.Add(1)
		t.toHTTP(c)
		return
	}
	if t.pool.isolated.Load() != nil {
		t.refuse(c) // isolation.go
		return
	}
	w := watchFirst(c, t.http != nil)
	var early *clientVerdict
	if !waited {
		early = t.awaitClient(w)
	}
	if early != nil && (early.gone || early.v == sniffHTTP) {
		w.finish()
		if early.gone {
			t.closeClient(c)
			return
		}
		t.clientFirst.Add(1)
		t.toHTTP(c)
		return
	}
	o := opening{t: t, ctx: ctx}
	bc, b, v := o.run(w, early)
	switch {
	case v.v != sniffMore:
		t.clientFirst.Add(1)
	case bc != nil:
		t.serverFirst.Add(1)
	}
	switch {
	case v.v == sniffHTTP:
		t.toHTTP(c)
		return
	case bc == nil:
		// No replica took the connection within the hold (or the
		// client left): a clean end, not a hang.
		if !v.gone {
			t.pool.svc.none.record(t.pool.now(), 0, 0, false)
		}
		t.closeClient(c)
		return
	}
	defer t.untrack(c)
	defer c.Close()
	t.servedTCP.Add(1)
	b.stats.tcp.Inc()
	defer func() {
		bc.Close()
		b.end()
		b.stats.record(t.pool.now(), 0, 0, false)
	}()
	splice(c, bc)
}

// clientFirstWait is how long a new connection of an Auto port whose
// clients have always spoken first waits for its client before a backend
// is dialled for it: most HTTP clients' bytes come within a fraction of a
// millisecond of the connection, and without the wait most fresh HTTP
// connections cost their backend an empty one (measured: 1,719 of 2,000
// from Go's client on loopback). A port that has seen a backend speak
// first waits for nothing.
const clientFirstWait = 50 * time.Millisecond

// awaitClient waits up to clientFirstWait for the client's verdict when
// the port's clients have always spoken first; nil: none yet, or no wait.
func (t *tcpRoute) awaitClient(w *clientFirst) *clientVerdict {
	if !t.awaitsClient() {
		return nil
	}
	select {
	case v := <-w.done:
		return &v
	case <-t.pool.clk.After(clientFirstWait):
		return nil
	}
}

// awaitsClient reports whether the port's clients have always spoken
// first: a new connection waits clientFirstWait for its client.
func (t *tcpRoute) awaitsClient() bool {
	return t.http != nil && t.serverFirst.Load() == 0 && t.clientFirst.Load() > 0
}

// speaksHTTPNow reports whether what c has sent already is an HTTP request
// line: most HTTP clients' first bytes are there as soon as the connection
// is, and such a connection needs no backend dialled for it.
func (t *tcpRoute) speaksHTTPNow(c net.Conn) bool {
	var buf [256]byte
	n, ok, err := peekNow(c, buf[:])
	return err == nil && ok && n > 0 && sniff(buf[:n]) == sniffHTTP
}

// toHTTP hands c, whose client speaks HTTP, to the HTTP server.
func (t *tcpRoute) toHTTP(c net.Conn) {
	t.untrack(c)
	t.servedHTTP.Add(1)
	t.http.adopt(c, nil)
}

// closeClient closes c without resetting it: what the client sent is read
// first (closing a socket with unread bytes sends a reset), for a moment.
func (t *tcpRoute) closeClient(c net.Conn) {
	defer t.untrack(c)
	defer c.Close()
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.SetReadDeadline(socketDeadline(time.Second))
		io.Copy(io.Discard, c)
	}
}

// opening is a connection's first moments: a backend is connected while the
// client is watched, until one of them speaks. A backend that refuses, or
// that closes or fails before it has said anything while the client has not
// either, is replaced by another (nothing was exchanged, so nothing is
// lost): how a replica killed as a client connects costs that client
// nothing. Within the hold: when no replica takes the connection, none is.
type opening struct {
	t   *tcpRoute
	ctx context.Context

	events chan backendEvent
	mu     sync.Mutex
	cur    net.Conn // the connected backend being watched
	stop   bool     // the client spoke (or left): watch no more
}

type backendEvent struct {
	c net.Conn // nil: no replica within the hold
	b *backend
}

// run returns the backend connection and its backend when the connection
// is to be spliced, nil otherwise, and the client's verdict (zero when the
// backend spoke first, or gave up).
// early is the client's verdict when it came before the opening began.
func (o *opening) run(w *clientFirst, early *clientVerdict) (net.Conn, *backend, clientVerdict) {
	ctx, cancel := context.WithCancel(o.ctx)
	defer cancel()
	o.events = make(chan backendEvent, 1)
	go o.backend(ctx)
	var e backendEvent
	var v clientVerdict
	ended := false // o.backend sent its one event
	if early != nil {
		v = *early
	} else {
		select {
		case v = <-w.done:
		case e = <-o.events:
			ended = true
		}
	}
	w.finish()
	o.mu.Lock()
	o.stop = true
	if o.cur != nil {
		o.cur.SetReadDeadline(aLongTimeAgo) // wakes its watch
	}
	o.mu.Unlock()
	keep := !v.gone && v.v != sniffHTTP
	if !keep {
		cancel() // a dial under way gives up
	}
	if !ended {
		e = <-o.events
	}
	if e.c == nil {
		return nil, nil, v
	}
	e.c.SetReadDeadline(time.Time{})
	if !keep {
		e.c.Close()
		e.b.end()
		return nil, nil, v
	}
	return e.c, e.b, v
}

// backend connects a backend and watches it while the client is silent.
// Its last act is its one event on o.events: the connection to splice
// (the backend spoke, or the client did and o.stop says so), or none.
func (o *opening) backend(ctx context.Context) {
	p := o.t.pool
	deadline := p.now() + int64(p.holdNow())
	var tried []*backend
	var one [1]byte
	for {
		bc, b := o.t.connect(ctx, deadline, tried)
		o.mu.Lock()
		stop := o.stop
		o.cur = bc
		o.mu.Unlock()
		if bc == nil || stop {
			o.events <- backendEvent{c: bc, b: b}
			return
		}
		n, err := peekWait(bc, one[:], 0)
		o.mu.Lock()
		stop = o.stop
		o.mu.Unlock()
		if stop || (err == nil && n > 0) {
			o.events <- backendEvent{c: bc, b: b}
			return
		}
		// It ended before a word, and so did the client: another.
		now := p.now()
		bc.Close()
		b.end()
		b.observe(now, failSample)
		p.failed(b, failConnect, now)
		o.t.log.Debug("proxy: replica closed a new connection before a byte", "service", p.service, "replica", b.replica, "err", err)
		tried = append(tried, b)
		deadline = now + int64(p.holdNow())
	}
}

// connect dials a backend not in tried (each refusal adds to it) until one
// accepts, waiting for one within the hold (until deadline, mono ns); when
// every ready backend has refused, after connectPause it tries them all
// again. nil: none within the hold, or ctx ended.
func (t *tcpRoute) connect(ctx context.Context, deadline int64, tried []*backend) (net.Conn, *backend) {
	p := t.pool
	tried = slices.Clone(tried)
	for ctx.Err() == nil {
		now := p.now()
		b := p.pickExcept(now, tried...)
		if b == nil && len(tried) > 0 {
			// Every ready one refused (all restarting at once?): all
			// again after a pause, within the hold.
			if time.Duration(deadline-now) <= connectPause {
				return nil, nil
			}
			select {
			case <-ctx.Done():
				return nil, nil
			case <-p.clk.After(connectPause):
			}
			tried = tried[:0]
			continue
		}
		if b == nil {
			if b = p.awaitUntil(ctx, deadline); b == nil {
				return nil, nil
			}
		}
		if bc, err := t.dial(ctx, b, p.now()); err == nil {
			return bc, b
		}
		tried = append(tried, b)
	}
	return nil, nil
}

// dial connects to b and accounts for the attempt; on success b has one
// more connection in flight.
func (t *tcpRoute) dial(ctx context.Context, b *backend, start int64) (net.Conn, error) {
	b.begin(start)
	bc, err := t.dialer.DialContext(ctx, "tcp", b.host)
	now := t.pool.now()
	if err != nil {
		b.end()
		if ctx.Err() == nil {
			b.observe(now, failSample)
			t.pool.failed(b, failConnect, now)
			t.log.Debug("proxy: dial failed", "service", t.pool.service, "replica", b.replica, "err", err)
		}
		return nil, err
	}
	b.observe(now, time.Duration(now-start))
	t.pool.succeeded(b)
	return bc, nil
}

// splice copies both ways until both directions have ended. A side that
// finishes sending (EOF) is passed on as a half-close, so the other
// direction keeps flowing; an error cuts both.
func splice(client, backend net.Conn) {
	done := make(chan struct{})
	go pipe(backend, client, done)
	pipe(client, backend, nil)
	<-done
}

// pipe copies src to dst; on Linux, TCP to TCP, io.Copy uses splice(2).
func pipe(dst, src net.Conn, done chan<- struct{}) {
	if done != nil {
		defer close(done)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
}
