package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// tcpRoute proxies one TCP route: each accepted connection is spliced to
// a picked backend, both ways, until both sides have finished.
type tcpRoute struct {
	pool   *pool
	dialer *net.Dialer
	log    *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // client connections, to cut at stop
	closed bool
	wg     sync.WaitGroup // connection handlers
}

func newTCPRoute(p *pool, dialer *net.Dialer, log *slog.Logger) *tcpRoute {
	return &tcpRoute{pool: p, dialer: dialer, log: log, conns: make(map[net.Conn]struct{})}
}

// serve accepts until ln is closed. ctx is the base of every connection's
// dials.
func (t *tcpRoute) serve(ctx context.Context, ln net.Listener) error {
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
		if !t.track(c) {
			c.Close()
			continue
		}
		t.wg.Add(1)
		go t.handle(ctx, c)
	}
}

func (t *tcpRoute) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
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

// handle proxies one client connection.
func (t *tcpRoute) handle(ctx context.Context, c net.Conn) {
	defer t.wg.Done()
	defer t.untrack(c)
	defer c.Close()
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("proxy: tcp connection handler panicked", "service", t.pool.service, "panic", r)
		}
	}()
	p := t.pool
	b := p.await(ctx)
	now := p.now()
	if b == nil {
		p.svc.none.record(now, 0, 0, false)
		return
	}
	bc, err := t.dial(ctx, b, now)
	if err != nil {
		now = p.now()
		if b = p.pickExcept(now, b); b == nil {
			return
		}
		if bc, err = t.dial(ctx, b, now); err != nil {
			return
		}
	}
	defer func() {
		bc.Close()
		now := p.now()
		b.end()
		b.stats.record(now, 0, 0, false)
	}()
	splice(c, bc)
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
	b.stats.tcp.Inc()
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
