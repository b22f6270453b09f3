package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tend-sh/tend/internal/proxy/evloop"
)

// The HTTP/1.x fast path: client connections and the keep-alive
// connections to backends live on a few epoll event loops (evloop), one per
// CPU, and a request is parsed, forwarded, answered and accounted for in
// the loop's callbacks, without a goroutine, a channel or a lock of its
// own. Why: with a goroutine per connection Go reads before it waits and
// wakes a goroutine per readiness, which on this 2-CPU host cost the
// proxy more CPU per request than nginx (bench/README.md); an event loop
// makes the same system calls nginx does.
//
// The loop does the common case only: a complete request head, a body of
// known length up to 64 KiB, an answer of known length up to 64 KiB (or
// none). A connection that asks for anything else (an upgrade, HTTP/2,
// a chunked or large upload, Expect, a head the loop cannot parse, a Host
// no route names) is handed, with the bytes read so far, to the goroutine
// servers (server.go), which do everything; so is one whose answer is
// large or of unknown length, after its head (see stream.go). Handed over
// means for good: the connection's file descriptor is duplicated out of
// the loop. A request's exchange (exchange.go) decides where it goes and
// what follows; the loop carries it out, waiting for a replica on a timer
// of its own when the exchange says so.
//
// The files: this one is the engine and what a loop owns; loopclient.go
// the client side (a request's life on the loop), loopupstream.go the
// backend side, loopwire.go the parsing and writing.

const (
	maxHead       = 16 << 10 // the largest request or response head the loop parses
	maxPipelined  = 1 << 20  // bytes a client may send ahead while its request is served
	headTimeout   = 30 * time.Second
	idleTimeout   = 2 * time.Minute
	sweepInterval = time.Second
)

// loops is the process's event-loop engine, shared by every HTTP listener
// of every Manager; started once, on first use, and never stopped.
type loops struct {
	eng *evloop.Engine

	mu     sync.Mutex
	states map[*evloop.Loop]*loopState
}

var (
	sharedOnce  sync.Once
	sharedLoops *loops
	sharedErr   error
	loopsUp     atomic.Pointer[loops] // sharedLoops once started, for those that must not start them
)

// theLoops starts the engine the first time it is asked for.
func theLoops() (*loops, error) {
	sharedOnce.Do(func() {
		l := &loops{states: map[*evloop.Loop]*loopState{}}
		eng, err := evloop.Start(loopCount(), l)
		if err != nil {
			sharedErr = fmt.Errorf("proxy: event loops: %w", err)
			return
		}
		l.eng = eng
		sharedLoops = l
		loopsUp.Store(l)
	})
	return sharedLoops, sharedErr
}

// loopCount is how many event loops to run, one per P (per CPU, unless
// GOMAXPROCS says otherwise), and it gives the process as many Ps again:
// a loop holds a P while it works, and the rest of the daemon keeps as
// many Ps as it had. Without them, a loop back from epoll_wait found no
// P free as often as not, and the runtime's monitor took Ps back from
// waiting loops every 20 µs, waking threads for nothing. Measured by hand
// against nginx (bench/README.md): loops on the Ps they had cost 42 µs of
// CPU per request, two loops with two Ps more 36 µs; one loop 0.9x
// nginx's requests (the CPU sat idle while the loop waited for its core);
// three and four loops on two CPUs traded throughput for tail latency.
func loopCount() int {
	n := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(2 * n)
	return n
}

// loopState is what one event loop owns; only that loop touches it.
type loopState struct {
	el      *evloop.Loop
	clients map[*client]struct{}
	idle    map[*backend][]*upstream // parked keep-alive connections, most recent last
	out     []byte                   // what is being written
	src     bytes.Reader             // a head being parsed, ...
	br      *bufio.Reader            // ... read through this
}

func (l *loops) state(el *evloop.Loop) *loopState {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := l.states[el]
	if ls == nil {
		ls = &loopState{el: el, clients: map[*client]struct{}{}, idle: map[*backend][]*upstream{},
			br: bufio.NewReaderSize(nil, maxHead+4096)}
		l.states[el] = ls
	}
	return ls
}

// each runs f on every loop, on the loop.
func (l *loops) each(f func(ls *loopState)) {
	l.mu.Lock()
	states := make([]*loopState, 0, len(l.states))
	for _, ls := range l.states {
		states = append(states, ls)
	}
	l.mu.Unlock()
	for _, ls := range states {
		ls.el.Execute(func() { f(ls) })
	}
}

// sweep closes srv's clients idle or slow for too long, at now on srv's
// clock, and parked connections to backends that are gone. Each server
// sweeps its own clients once a second (httpServer.sweeper).
func (ls *loopState) sweep(srv *httpServer, now int64) {
	for cl := range ls.clients {
		if cl.busy || cl.srv != srv {
			continue
		}
		waited := time.Duration(now - cl.since)
		if waited > idleTimeout || (waited > headTimeout && cl.c.InboundBuffered() > 0) {
			cl.close()
		}
	}
	ls.dropGone()
}

// dropGone closes the parked connections to backends that are gone.
func (ls *loopState) dropGone() {
	for b, ups := range ls.idle {
		if b.conns.isClosed() {
			for _, up := range slices.Clone(ups) {
				up.close()
			}
		}
	}
}

// closeParked has every loop close its parked connections to backends
// that are gone, if the loops run: a pool let some go.
func closeParked() {
	if l := loopsUp.Load(); l != nil {
		l.each(func(ls *loopState) { ls.dropGone() })
	}
}

// park keeps up for the next exchange with its backend; a backend that is
// gone gets its connection closed.
func (ls *loopState) park(up *upstream) {
	if up.b.conns.isClosed() || len(ls.idle[up.b]) >= maxIdlePerBackend {
		up.close()
		return
	}
	up.reused = true
	ls.idle[up.b] = append(ls.idle[up.b], up)
}

// unpark forgets up, which closed while parked.
func (ls *loopState) unpark(up *upstream) {
	ups := ls.idle[up.b]
	if i := slices.Index(ups, up); i >= 0 {
		ups = slices.Delete(ups, i, i+1)
		if len(ups) == 0 {
			delete(ls.idle, up.b)
		} else {
			ls.idle[up.b] = ups
		}
	}
}

// takeIdle takes the most recently parked connection to b, or nil.
func (ls *loopState) takeIdle(b *backend) *upstream {
	ups := ls.idle[b]
	n := len(ups)
	if n == 0 {
		return nil
	}
	up := ups[n-1]
	ups[n-1] = nil
	if n == 1 {
		delete(ls.idle, b)
	} else {
		ls.idle[b] = ups[:n-1]
	}
	return up
}

// The engine's callbacks: a connection's context says whose it is.

func (l *loops) OnOpen(c *evloop.Conn) evloop.Action {
	switch x := c.Context().(type) {
	case *client:
		x.c, x.ls = c, l.state(c.Loop())
		return x.call(x.opened)
	case *upstream:
		x.c = c
		return x.call(x.opened)
	case *sniffer:
		return x.opened(c)
	}
	return evloop.Close
}

func (l *loops) OnTraffic(c *evloop.Conn) evloop.Action {
	switch x := c.Context().(type) {
	case *client:
		return x.traffic()
	case *upstream:
		return x.traffic()
	case *sniffer:
		return x.traffic()
	}
	return evloop.Close
}

// OnClose is a connection closed; for a client the loop could not take,
// x.ls is still nil.
func (l *loops) OnClose(c *evloop.Conn, err error) {
	switch x := c.Context().(type) {
	case *client:
		x.closed()
	case *upstream:
		x.closed(err)
	case *sniffer:
		x.closed()
	}
}

// conn is what client and upstream share: closing a connection from
// inside its own callback is done by the callback's return value, so that
// the callback's own code never runs on a closed connection.
type conn struct {
	c        *evloop.Conn
	inCall   bool // in a callback of its own
	closeNow bool // close it when that returns
	dead     bool // closed, or closing
}

func (k *conn) close() {
	if k.dead || k.c == nil {
		k.dead = true
		return
	}
	k.dead = true
	if k.inCall {
		k.closeNow = true
		return
	}
	k.c.Loop().Close(k.c)
}

// call runs f as the connection's callback.
func (k *conn) call(f func()) evloop.Action {
	k.inCall = true
	f()
	k.inCall = false
	if k.closeNow {
		return evloop.Close
	}
	return evloop.None
}
