package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// httpServer serves one HTTP listener. Its connections go to the event
// loops (loop.go), which serve the common HTTP/1.x exchange; what they
// hand over is served by goroutines: fasthttp for the rest of HTTP/1.x,
// net/http for cleartext HTTP/2 and protocol upgrades (WebSocket).
type httpServer struct {
	ln       net.Listener
	routes   lookup
	fast     *fasthttp.Server
	std      *http.Server
	toFast   *connQueue // connections the loops handed to fasthttp
	handoffs *connQueue // to net/http
	log      *slog.Logger
	clk      *clk
	quit     chan struct{} // closed by stop: the sweeper ends

	loopConns atomic.Int64 // connections on the loops
	closing   atomic.Bool  // stopping: the loops close connections once idle

	mu    sync.Mutex
	conns map[net.Conn]struct{} // fasthttp's open connections, to cut at the end

	served chan struct{} // closed when everything serve started has returned
}

// lookup finds the route of a request by its Host header (without port);
// nil: none, and the client gets a 404.
type lookup interface {
	route(host []byte) *httpRoute
}

func newHTTPServer(ln net.Listener, routes lookup, log *slog.Logger, clk *clk) *httpServer {
	s := &httpServer{ln: ln, routes: routes, log: log, clk: clk, toFast: newConnQueue(ln.Addr()), handoffs: newConnQueue(ln.Addr()),
		conns: map[net.Conn]struct{}{}, served: make(chan struct{}), quit: make(chan struct{})}
	s.fast = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if isUpgrade(&ctx.Request.Header) {
				s.handOver(ctx)
				return
			}
			h := routes.route(ctx.Host())
			if h == nil {
				ctx.SetStatusCode(http.StatusNotFound)
				ctx.SetContentType("text/plain; charset=utf-8")
				ctx.SetBodyString(s.unknownHost(string(ctx.Host())))
				return
			}
			h.serve(ctx)
		},
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		StreamRequestBody:            true,
		MaxRequestBodySize:           maxReplayBody, // larger bodies stream through
		ReadBufferSize:               16 << 10,      // the largest request head
		ReadTimeout:                  30 * time.Second,
		IdleTimeout:                  2 * time.Minute,
		KeepHijackedConns:            true, // handed to net/http
		// Its idle-worker reaper notices the server's end only this long
		// after: kept short so stopping leaves nothing running for long.
		MaxIdleWorkerDuration: 200 * time.Millisecond,
		CloseOnShutdown:       true,
		Logger:                fastLogger{log},
		ConnState:             s.track,
	}
	s.std = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := routes.route([]byte(r.Host))
			if h == nil {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, s.unknownHost(r.Host))
				return
			}
			h.ServeHTTP(w, r)
		}),
		Protocols:         h1h2c(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

// unknownHost is the 404's body for a Host no route names.
func (s *httpServer) unknownHost(host string) string {
	return fmt.Sprintf("tend: no service named %q behind %s\n", hostOnly(host), s.ln.Addr())
}

func h1h2c() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// fastLogger sends fasthttp's complaints (malformed requests, mostly) to
// the debug log.
type fastLogger struct{ log *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) {
	l.log.Debug("proxy: http server", "msg", fmt.Sprintf(format, args...))
}

// serve accepts connections onto the event loops, and runs the goroutine
// servers for those handed over, until stop. Without accept, connections
// come through adopt only (an Auto route's, whose clients spoke HTTP).
func (s *httpServer) serve(accept bool) {
	defer close(s.served)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.std.Serve(s.handoffs); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error("proxy: http/2 server failed", "err", err)
		}
	})
	wg.Go(func() {
		if err := s.fast.Serve(s.toFast); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Error("proxy: http server failed", "err", err)
		}
	})
	defer wg.Wait()
	l, err := theLoops()
	if err != nil {
		s.log.Error("proxy: no event loops: every connection is served by goroutines", "err", err)
	} else {
		wg.Go(func() { s.sweeper(l) })
		if accept {
			if done, ok := s.listenOnLoops(l); ok {
				<-done
				return
			}
		}
	}
	for accept {
		c, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("proxy: listener failed", "err", err)
			}
			return
		}
		s.adopt(c, nil)
	}
}

// sweeper sweeps the server's clients on the loops once a second, until
// stop.
func (s *httpServer) sweeper(l *loops) {
	for {
		select {
		case <-s.quit:
			return
		case <-s.clk.After(sweepInterval):
		}
		now := s.clk.mono()
		l.each(func(ls *loopState) { ls.sweep(s, now) })
	}
}

// slowToStd sends what the loops hand over for HTTP/1.x to net/http
// instead of fasthttp: a switch for BenchmarkSlowPath, which measures
// whether one goroutine-side stack could serve both (doc.go).
var slowToStd atomic.Bool

// slowPath is where the loops hand an HTTP/1.x connection they do not
// serve: fasthttp's server.
func (s *httpServer) slowPath() *connQueue {
	if slowToStd.Load() {
		return s.handoffs
	}
	return s.toFast
}

// adopt serves c, whose client sent pending so far: on the loops when
// nothing is pending, by goroutines otherwise.
func (s *httpServer) adopt(c net.Conn, pending []byte) {
	l, _ := theLoops()
	if l == nil || len(pending) > 0 {
		if !s.toFast.push(&replayConn{Conn: c, pending: pending}) {
			c.Close()
		}
		return
	}
	s.loopConns.Add(1)
	if err := l.eng.Enroll(c, &client{srv: s}); err != nil {
		s.loopConns.Add(-1) // Enroll closed c
	}
}

// stop closes the listener, lets requests in flight finish for grace,
// then cuts every connection.
func (s *httpServer) stop(grace time.Duration, started bool) {
	s.ln.Close()
	s.closing.Store(true)
	close(s.quit)
	if !started {
		s.toFast.Close()
		s.handoffs.Close()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer s.clk.AfterFunc(grace, cancel).Stop()
	var wg sync.WaitGroup
	wg.Go(func() { s.fast.ShutdownWithContext(ctx) }) // closes toFast
	wg.Go(func() { s.std.Shutdown(ctx) })             // hijacked (upgraded) ones are the routes' to cut
	l, _ := theLoops()
	if l != nil {
		wg.Go(func() {
			s.onLoops(l, false)
			waitUntil(s.clk, grace, func() bool { return s.loopConns.Load() == 0 })
			s.onLoops(l, true)
			waitUntil(s.clk, time.Second, func() bool { return s.loopConns.Load() == 0 })
		})
	}
	wg.Wait()
	s.toFast.Close()
	s.handoffs.Close()
	s.std.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-s.served
}

// onLoops closes the server's connections on the loops: the idle ones,
// or all of them when cut.
func (s *httpServer) onLoops(l *loops, cut bool) {
	l.each(func(ls *loopState) {
		for cl := range ls.clients {
			if cl.srv == s && (cut || !cl.busy) {
				cl.close()
			}
		}
	})
}

// track keeps fasthttp's open connections, for stop to cut.
func (s *httpServer) track(c net.Conn, state fasthttp.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case fasthttp.StateNew:
		s.conns[c] = struct{}{}
	case fasthttp.StateHijacked, fasthttp.StateClosed:
		delete(s.conns, c)
	}
}

// isUpgrade reports whether a request asks to switch protocols.
func isUpgrade(h *fasthttp.RequestHeader) bool {
	return h.ConnectionUpgrade() && len(h.Peek("Upgrade")) > 0
}

// handOver gives an upgrade request's connection to net/http, which
// serves it (and what follows on it) from the request on.
func (s *httpServer) handOver(ctx *fasthttp.RequestCtx) {
	// A copy: the header's bytes are fasthttp's, reused for its next request.
	h, body := ctx.Request.Header.Header(), ctx.Request.Body()
	head := append(append(make([]byte, 0, len(h)+len(body)), h...), body...)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		if !s.handoffs.push(&replayConn{Conn: c, pending: head}) {
			c.Close()
		}
	})
}

// http2Preface is what a client speaking cleartext HTTP/2 sends first.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// replayConn reads pending before the rest of the connection.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// connQueue is a listener whose connections are pushed, not accepted.
type connQueue struct {
	addr   net.Addr
	ch     chan net.Conn
	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to the server; false when the queue is closed.
func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
