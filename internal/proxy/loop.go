package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

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
// a chunked or large upload, Expect, a head the loop cannot parse, a
// request no replica can take right now) is handed, with the bytes read
// so far, to the goroutine servers (server.go), which do everything; so is
// one whose answer is large or of unknown length, after its head (see
// stream.go). Handed over means for good: the connection's file descriptor
// is duplicated out of the loop.

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
		go l.sweeper()
		sharedLoops = l
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

// sweeper closes, once a second, clients idle or slow for too long and
// parked connections to backends that are gone.
func (l *loops) sweeper() {
	for range time.Tick(sweepInterval) {
		l.each(func(ls *loopState) { ls.sweep(mono()) })
	}
}

func (ls *loopState) sweep(now int64) {
	for cl := range ls.clients {
		if cl.busy {
			continue
		}
		waited := time.Duration(now - cl.since)
		if waited > idleTimeout || (waited > headTimeout && cl.c.InboundBuffered() > 0) {
			cl.close()
		}
	}
	for b, ups := range ls.idle {
		if b.conns.isClosed() {
			for _, up := range slices.Clone(ups) {
				up.close()
			}
		}
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
	}
	return evloop.Close
}

func (l *loops) OnTraffic(c *evloop.Conn) evloop.Action {
	switch x := c.Context().(type) {
	case *client:
		return x.traffic()
	case *upstream:
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

// client is one client connection on a loop, and its request in flight.
type client struct {
	conn
	srv   *httpServer
	ls    *loopState
	hdr   fasthttp.RequestHeader
	since int64 // mono ns since it waits for a request
	busy  bool  // a request is being served
	moved bool  // handed to the goroutine servers
	timer *time.Timer
	ex    loopReq
}

// loopReq is a request's trip through the proxy, attempt by attempt.
type loopReq struct {
	h          *httpRoute
	req        []byte // as sent to backends: head and body
	head       bool   // HEAD: the answer has no body
	idempotent bool
	close      bool // close the client's connection after the answer
	http10     bool // an HTTP/1.0 client that asked to keep the connection

	b        *backend
	up       *upstream
	start    int64 // of this attempt
	deadline int64 // for the response head
	began    int64 // mono ns when the request came
	tries    int   // attempts made
	tried    triedSet
	writing  bool // the request is being written to up

	rh       fasthttp.ResponseHeader
	gotHead  bool
	headLen  int
	bodyLen  int
	streamAt int64 // when a large answer began waiting to be handed over
}

func (cl *client) opened() {
	cl.since = mono()
	cl.ls.clients[cl] = struct{}{}
	if cl.srv.closing.Load() {
		cl.close()
	}
}

func (cl *client) traffic() evloop.Action {
	return cl.call(func() {
		if cl.busy && cl.c.InboundBuffered() > maxPipelined {
			cl.close()
			return
		}
		cl.next()
	})
}

// next serves the requests buffered, until one must wait.
func (cl *client) next() {
	for !cl.busy && !cl.dead {
		if cl.c.OutboundBuffered() > maxPipelined {
			// A client that sends ahead and does not read: its next
			// requests wait until its answers are out (evloop calls
			// OnTraffic again once they are).
			return
		}
		buf := cl.c.Peek()
		if len(buf) == 0 {
			return
		}
		if p := min(len(buf), len(http2Preface)); string(buf[:p]) == http2Preface[:p] {
			if p == len(http2Preface) {
				cl.handOver(cl.srv.handoffs, buf)
			}
			return
		}
		end := headEnd(buf)
		if end < 0 {
			if len(buf) > maxHead {
				cl.handOver(cl.srv.toFast, buf) // it answers 431
			}
			return
		}
		if cl.ls.parse(&cl.hdr, buf[:end]) != nil || !loopable(&cl.hdr) {
			cl.handOver(cl.srv.toFast, buf)
			return
		}
		n := bodyLength(&cl.hdr)
		if len(buf) < end+n {
			return // the body is on its way
		}
		h := cl.srv.routes.route(cl.hdr.Host())
		var b *backend
		if h != nil {
			b = h.pool.pick(mono())
		}
		if b == nil {
			// A 404, or a wait for a replica: the goroutine path does both.
			cl.handOver(cl.srv.toFast, buf)
			return
		}
		cl.begin(h, buf[end:end+n])
		cl.c.Discard(end + n)
		cl.attempt(b)
	}
}

// loopable reports whether the loop can serve a request with this head.
func loopable(h *fasthttp.RequestHeader) bool {
	n := bodyLength(h)
	return n >= 0 && n <= maxReplayBody && !isUpgrade(h) && len(h.Peek("Expect")) == 0
}

// bodyLength is a request's body length: -1 when chunked.
func bodyLength(h *fasthttp.RequestHeader) int {
	n := h.ContentLength()
	if n == -2 { // fasthttp's "no length given": no body, for a request
		return 0
	}
	return n
}

// headEnd is the length of the head at the start of buf, blank line
// included; -1 when it is not all there.
func headEnd(buf []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(buf) && buf[i] == '\n' {
			return i + 1
		}
		if i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n' {
			return i + 2
		}
	}
}

// parse reads a complete head into h (a request or response header).
func (ls *loopState) parse(h interface{ Read(*bufio.Reader) error }, head []byte) error {
	ls.src.Reset(head)
	ls.br.Reset(&ls.src)
	return h.Read(ls.br)
}

// begin takes the request whose head is in cl.hdr.
func (cl *client) begin(h *httpRoute, body []byte) {
	hd := &cl.hdr
	ex := &cl.ex
	ex.h = h
	ex.head = hd.IsHead()
	ex.idempotent = isIdempotent(string(hd.Method()), *h.idempotent.Load())
	keepAlive := bytes.EqualFold(hd.Peek("Connection"), []byte("keep-alive"))
	ex.close = hd.ConnectionClose() || (!hd.IsHTTP11() && !keepAlive)
	ex.http10 = !hd.IsHTTP11() && keepAlive
	ex.req = appendHead(ex.req[:0], hd, cl.c.RemoteAddr(), len(body))
	ex.req = append(ex.req, body...)
	ex.tries, ex.began = 0, mono()
	ex.tried.reset()
	cl.busy = true
	h.active.Add(1)
}

// attempt sends the request to b.
func (cl *client) attempt(b *backend) {
	ex := &cl.ex
	ex.tries++
	cl.sendTo(b, false)
}

// sendTo sends the request to b and remembers b as tried.
func (cl *client) sendTo(b *backend, fresh bool) {
	ex := &cl.ex
	ex.tried.add(b)
	cl.send(b, fresh)
}

// send sends the request to b, on a parked connection or (fresh, or none
// parked) a new one.
func (cl *client) send(b *backend, fresh bool) {
	ex := &cl.ex
	ex.b, ex.start, ex.gotHead, ex.streamAt = b, mono(), false, 0
	b.begin(ex.start)
	var up *upstream
	if !fresh {
		up = cl.ls.takeIdle(b)
	}
	if up == nil {
		up = &upstream{ls: cl.ls, b: b}
		cl.dial(up)
	}
	ex.up, up.cl = up, cl
	cl.arm()
	if up.c != nil {
		up.send()
	}
}

// dial connects a new connection to its backend off the loop; it comes
// back through OnOpen, or as a failed attempt.
func (cl *client) dial(up *upstream) {
	el := cl.c.Loop()
	dialer := cl.ex.h.dialer
	go func() {
		c, err := dialer.Dial("tcp", up.b.host)
		if err == nil {
			if err = el.Enroll(c, up); err == nil {
				return // OnOpen follows
			}
		}
		if op := (*net.OpError)(nil); !errors.As(err, &op) || op.Op != "dial" {
			err = &net.OpError{Op: "dial", Net: "tcp", Err: err}
		}
		el.Execute(func() { up.failed(err) })
	}()
}

// arm starts the wait for the response head.
func (cl *client) arm() {
	d := cl.ex.h.responseTimeout
	cl.ex.deadline = mono() + int64(d)
	if cl.timer == nil {
		el := cl.c.Loop()
		cl.timer = time.AfterFunc(d, func() { el.Execute(cl.checkTimeout) })
		return
	}
	cl.timer.Reset(d)
}

func (cl *client) disarm() {
	if cl.timer != nil {
		cl.timer.Stop()
	}
}

// checkTimeout fails an attempt whose response head is late. The timer
// may be an earlier attempt's: the deadline says.
func (cl *client) checkTimeout() {
	ex := &cl.ex
	if cl.busy && ex.up != nil && !ex.gotHead && mono() >= ex.deadline {
		cl.failed(ex.up, errLate)
	}
}

var (
	errLate      = fmt.Errorf("no response head in time: %w", os.ErrDeadlineExceeded)
	errBadAnswer = errors.New("the backend's answer could not be parsed")
)

// answerBytes reads what up has of the answer: the head, then the body,
// and finishes the exchange once it has all of it.
func (cl *client) answerBytes(up *upstream) {
	ex := &cl.ex
	buf := up.c.Peek()
	for !ex.gotHead {
		end := headEnd(buf)
		if end < 0 {
			if len(buf) > maxHead {
				cl.failed(up, errBadAnswer)
			}
			return
		}
		if cl.ls.parse(&ex.rh, buf[:end]) != nil {
			cl.failed(up, errBadAnswer)
			return
		}
		code := ex.rh.StatusCode()
		if code >= 100 && code < 200 {
			if code == 101 { // no upgrade was asked for
				cl.failed(up, errBadAnswer)
				return
			}
			up.c.Discard(end) // an interim answer
			buf = buf[end:]
			continue
		}
		ex.gotHead, ex.headLen, ex.bodyLen = true, end, 0
		if !ex.head && code != 204 && code != 304 {
			n := ex.rh.ContentLength()
			if n == -1 {
				// A chunked answer that is all in already passes as it
				// is; one still coming streams, so a stream of events
				// is not held back.
				var err error
				if n, err = chunkedLen(buf[end:]); err != nil {
					cl.failed(up, err)
					return
				}
			}
			if n < 0 || n > maxBuffered {
				cl.disarm()
				cl.stream(up)
				return
			}
			ex.bodyLen = n
		}
	}
	if ex.streamAt != 0 {
		return // waits to be handed over (stream.go)
	}
	if n := ex.headLen + ex.bodyLen; len(buf) >= n {
		cl.answered(up, buf[:n], len(buf) > n)
	}
}

// chunkedLen is the length of the chunked body at the start of buf, its
// trailer included; -1 while it is not all there.
func chunkedLen(buf []byte) (int, error) {
	i := 0
	for {
		eol := bytes.IndexByte(buf[i:], '\n')
		if eol < 0 {
			return -1, nil
		}
		size, err := chunkSize(buf[i : i+eol+1])
		if err != nil {
			return 0, err
		}
		i += eol + 1
		if size == 0 {
			break
		}
		if int64(len(buf)-i) < size+2 {
			return -1, nil
		}
		i += int(size) + 2
	}
	for { // the trailer, up to its blank line
		eol := bytes.IndexByte(buf[i:], '\n')
		if eol < 0 {
			return -1, nil
		}
		line := buf[i : i+eol+1]
		i += eol + 1
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return i, nil
		}
	}
}

// answered finishes an attempt whose whole answer is in; extra: the
// backend sent more than the answer, so its connection is not reused.
func (cl *client) answered(up *upstream, answer []byte, extra bool) {
	ex := &cl.ex
	cl.disarm()
	b, code := ex.b, ex.rh.StatusCode()
	now := mono()
	took := time.Duration(now - ex.start)
	out := appendAnswer(cl.ls.out[:0], answer[:ex.headLen], ex.close, ex.http10)
	out = append(out, answer[ex.headLen:]...)
	cl.ls.out = out
	up.c.Discard(len(answer))
	up.cl, ex.up = nil, nil
	if ex.rh.ConnectionClose() || extra {
		up.close()
	} else {
		cl.ls.park(up)
	}
	b.end()
	b.stats.record(now, code, took, true)
	f := ex.h.pool.answered(b, code, now, took)
	if cl.retry(f, now) {
		return
	}
	cl.reply(out)
}

// failed ends an attempt on up that got no answer.
func (cl *client) failed(up *upstream, err error) {
	ex := &cl.ex
	cl.disarm()
	sent := !ex.writing
	up.cl, ex.up = nil, nil
	up.close()
	b := ex.b
	b.end()
	now := mono()
	if up.reused && (!sent || ex.idempotent) && !errors.Is(err, errLate) && ex.streamAt == 0 {
		cl.sendTo(ex.h.pool.afterStale(now, b, ex.tried.list()), true)
		return
	}
	took := time.Duration(now - ex.start)
	f, code := failBroken, 502
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "dial", !sent:
		f = failConnect // the request reached no one: it could not be written
	case errors.Is(err, errLate):
		f, code = failTimeout, 504
	}
	b.stats.record(now, code, took, true)
	b.observe(now, max(took, failSample))
	ex.h.pool.failed(b, f, now)
	ex.h.log.Debug("proxy: attempt failed", "service", ex.h.pool.service, "replica", b.replica, "err", err)
	if cl.retry(f, now) || cl.pause(f, now) {
		return
	}
	cl.reply(appendError(cl.ls.out[:0], code, ex.h.bodies[code], ex.close))
}

// pause waits, within the hold, for a replica to take a request whose
// failed attempt allows another when none can take it now (as forward.go's
// serve and attempts do): after a connection every replica refused (all
// restarting at once), any replica, after connectPause; after other
// failures, one not tried yet, as a retry. Checked every connectPause.
func (cl *client) pause(f failure, now int64) bool {
	ex := &cl.ex
	if f != failConnect && !mayRetry(f, ex.idempotent, ex.tries) || time.Duration(now-ex.began)+connectPause >= ex.h.pool.hold {
		return false
	}
	el := cl.c.Loop()
	time.AfterFunc(connectPause, func() {
		el.Execute(func() {
			if !cl.busy || cl.dead || ex.up != nil {
				return // the client left
			}
			now := mono()
			p := ex.h.pool
			var b *backend
			if ex.tries < maxAttempts {
				b = p.pickExcept(now, ex.tried.list()...)
			}
			if b == nil && f == failConnect {
				// Every replica tried refused: any of them, from the start.
				if b = p.pick(now); b != nil {
					ex.tries = 0
					ex.tried.reset()
				}
			}
			switch {
			case b != nil && p.svc.takeRetry(now, f == failConnect):
				cl.attempt(b)
			case b != nil || !cl.pause(f, now):
				cl.reply(appendError(cl.ls.out[:0], 502, ex.h.bodies[502], ex.close))
			}
		})
	})
	return true
}

// retry sends the request to another backend when the failure allows it
// (see maxAttempts and the retry budget).
func (cl *client) retry(f failure, now int64) bool {
	ex := &cl.ex
	if !mayRetry(f, ex.idempotent, ex.tries) {
		return false
	}
	p := ex.h.pool
	next := p.pickExcept(now, ex.tried.list()...)
	if next == nil || !p.svc.takeRetry(now, f == failConnect) {
		return false
	}
	cl.attempt(next)
	return true
}

// reply writes the exchange's answer and goes on to the next request.
func (cl *client) reply(out []byte) {
	cl.done()
	cl.c.Write(out)
	cl.after()
}

// done ends the exchange's part in the route's bookkeeping.
func (cl *client) done() {
	cl.busy = false
	cl.ex.h.active.Add(-1)
	cl.since = mono()
}

// after closes the connection or serves what the client sent meanwhile.
func (cl *client) after() {
	switch {
	case cl.dead:
	case cl.ex.close || cl.srv.closing.Load():
		cl.close()
	default:
		cl.next()
	}
}

// closed is the client's connection ending: a request in flight is
// abandoned, which is no backend's fault.
func (cl *client) closed() {
	cl.dead = true
	delete(cl.ls.clients, cl)
	cl.srv.loopConns.Add(-1)
	cl.disarm()
	if cl.moved || !cl.busy {
		return
	}
	ex := &cl.ex
	cl.busy = false
	ex.h.active.Add(-1)
	if up := ex.up; up != nil {
		up.cl, ex.up = nil, nil
		up.close()
		now := mono()
		ex.b.end()
		ex.b.stats.record(now, statusClientGone, time.Duration(now-ex.start), false)
	}
}

// handOver gives the connection, with the bytes it sent so far, to the
// goroutine servers through q.
func (cl *client) handOver(q *connQueue, pending []byte) {
	pending = bytes.Clone(pending)
	c, err := dupConn(cl.c)
	cl.moved = true
	cl.close()
	if err != nil {
		cl.srv.log.Debug("proxy: handing a connection over failed", "err", err)
		return
	}
	go func() {
		if !q.push(&replayConn{Conn: c, pending: pending}) {
			c.Close()
		}
	}()
}

// dupConn is a net.Conn on a duplicate of c's socket, which outlives c.
func dupConn(c *evloop.Conn) (net.Conn, error) {
	fd, err := c.Dup()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	return net.FileConn(f)
}

// upstream is one connection to a backend on a loop.
type upstream struct {
	conn
	ls     *loopState
	b      *backend
	cl     *client // whose request it carries; nil while parked
	reused bool    // it served an exchange before: the backend may have closed it while idle
	unsent bool    // new: its client's request is still to be written
}

func (up *upstream) opened() {
	switch {
	case up.dead: // given up while dialling
		up.dead = false
		up.close()
	case up.cl == nil: // its client left: keep it for the next
		up.ls.park(up)
	default:
		// Written from its first wake-up, so that a failed write is
		// handled as on any other exchange.
		up.unsent = true
		up.c.Wake()
	}
}

// send writes its client's request; a failed write ends up in closed.
func (up *upstream) send() {
	ex := &up.cl.ex
	ex.writing = true
	up.c.Write(ex.req)
	ex.writing = false
}

func (up *upstream) traffic() evloop.Action {
	if up.unsent {
		up.unsent = false
		if up.cl != nil {
			up.send()
		}
		if up.dead || up.c.InboundBuffered() == 0 {
			return evloop.None
		}
	}
	if up.cl == nil {
		return evloop.Close // nothing was asked
	}
	return up.call(func() { up.cl.answerBytes(up) })
}

func (up *upstream) closed(err error) {
	up.dead = true
	if cl := up.cl; cl != nil {
		if err == nil {
			err = errors.New("the backend closed the connection")
		}
		cl.failed(up, err)
		return
	}
	up.ls.unpark(up)
}

// failed is a dial that did not connect.
func (up *upstream) failed(err error) {
	up.dead = true
	if cl := up.cl; cl != nil {
		cl.failed(up, err)
	}
}

// appendAnswer writes the backend's response head for the client: less
// its hop headers, with Connection as the client's connection needs.
func appendAnswer(dst, head []byte, close, http10 bool) []byte {
	line, rest, _ := bytes.Cut(head, []byte("\n"))
	dst = append(dst, bytes.TrimRight(line, "\r")...)
	dst = appendHeaders(dst, rest, responseHop)
	switch {
	case close:
		dst = append(dst, "\r\nConnection: close"...)
	case http10:
		dst = append(dst, "\r\nConnection: keep-alive"...)
	}
	return append(dst, "\r\n\r\n"...)
}

// appendError writes tend's own short plain-text answer.
func appendError(dst []byte, code int, body []byte, close bool) []byte {
	dst = fmt.Appendf(dst, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n",
		code, fasthttp.StatusMessage(code), len(body))
	if close {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}
