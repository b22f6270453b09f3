package proxy

import (
	"bytes"
	"errors"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/proxy/evloop"
)

// client is one client connection on a loop, and its request in flight.
type client struct {
	conn
	srv   *httpServer
	ls    *loopState
	hdr   fasthttp.RequestHeader
	since int64 // mono ns since it waits for a request
	busy  bool  // a request is being served
	moved bool  // handed to the goroutine servers
	timer clock.Timer

	x  exchange // the request's life: what to do next
	rq wire     // the request's bytes and its answer's, on the loop

	waiting bool   // the exchange waits (for a replica, or a pause)
	wakeAt  int64  // ... until then, or a change of the pool
	waiter  waiter // its wake runs poolChanged on the loop
}

// wire is what the loop keeps of a request in flight: the bytes to send,
// the connection they go on, and the answer as it comes in.
type wire struct {
	h      *httpRoute
	req    []byte // as sent to backends: head and body
	head   bool   // HEAD: the answer has no body
	close  bool   // close the client's connection after the answer
	http10 bool   // an HTTP/1.0 client that asked to keep the connection

	up       *upstream
	deadline int64 // for the response head
	writing  bool  // the request is being written to up

	rh       fasthttp.ResponseHeader
	gotHead  bool
	headLen  int
	bodyLen  int
	streamAt int64 // when a large answer began waiting to be handed over
}

func (cl *client) opened() {
	cl.since = cl.srv.clk.mono()
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
				cl.handOver(cl.srv.slowPath(), buf) // it answers 431
			}
			return
		}
		if cl.ls.parse(&cl.hdr, buf[:end]) != nil || !loopable(&cl.hdr) {
			cl.handOver(cl.srv.slowPath(), buf)
			return
		}
		n := bodyLength(&cl.hdr)
		if len(buf) < end+n {
			return // the body is on its way
		}
		h := cl.srv.routes.route(cl.hdr.Host())
		if h == nil {
			cl.handOver(cl.srv.slowPath(), buf) // it answers 404
			return
		}
		cl.begin(h, buf[end:end+n])
		cl.c.Discard(end + n)
		cl.carry(cl.x.start(cl.srv.clk.mono()))
	}
}

// begin takes the request whose head is in cl.hdr.
func (cl *client) begin(h *httpRoute, body []byte) {
	hd := &cl.hdr
	rq := &cl.rq
	rq.h = h
	rq.head = hd.IsHead()
	keepAlive := bytes.EqualFold(hd.Peek("Connection"), []byte("keep-alive"))
	rq.close = hd.ConnectionClose() || (!hd.IsHTTP11() && !keepAlive)
	rq.http10 = !hd.IsHTTP11() && keepAlive
	rq.req = appendHead(rq.req[:0], hd, cl.c.RemoteAddr(), len(body))
	rq.req = append(rq.req, body...)
	cl.x = newExchange(h.pool, isIdempotent(string(hd.Method()), *h.idempotent.Load()), true)
	cl.busy = true
	h.active.Add(1)
}

// carry does what the exchange decided. Delivering a buffered answer is
// answered's; a streamed one, stream's.
func (cl *client) carry(d decision) {
	switch d.step {
	case stepSend:
		cl.send(d.b, d.fresh)
	case stepWait:
		cl.wait(d)
	case stepAnswer:
		rq := &cl.rq
		if d.fb != nil {
			cl.reply(appendCanned(cl.ls.out[:0], d.fb, rq.close))
			return
		}
		cl.reply(appendError(cl.ls.out[:0], d.code, rq.h.bodies[d.code], rq.close))
	}
}

// send sends the request to b, on a parked connection or (fresh, or none
// parked) a new one.
func (cl *client) send(b *backend, fresh bool) {
	rq := &cl.rq
	rq.gotHead, rq.streamAt = false, 0
	var up *upstream
	if !fresh {
		up = cl.ls.takeIdle(b)
	}
	if up == nil {
		up = &upstream{ls: cl.ls, b: b}
		cl.dial(up)
	}
	rq.up, up.cl = up, cl
	cl.arm(cl.x.sentAt + int64(rq.h.responseTimeout))
	if up.c != nil {
		up.send()
	}
}

// dial connects a new connection to its backend off the loop; it comes
// back through OnOpen, or as a failed attempt.
func (cl *client) dial(up *upstream) {
	el := cl.c.Loop()
	dialer := cl.rq.h.dialer
	go func() {
		c, err := dialer.Dial("tcp", up.b.host)
		if err == nil {
			if err = el.Enroll(c, up); err == nil {
				return // OnOpen follows
			}
		}
		el.Execute(func() { up.failed(err) })
	}()
}

// arm sets the client's one timer for at (mono ns): the response head's
// deadline, or the end of a wait. tick says which it was.
func (cl *client) arm(at int64) {
	d := time.Duration(at - cl.srv.clk.mono())
	if cl.rq.up != nil {
		cl.rq.deadline = at
	}
	if cl.timer == nil {
		el := cl.c.Loop()
		cl.timer = cl.srv.clk.AfterFunc(d, func() { el.Execute(cl.tick) })
		return
	}
	cl.timer.Reset(d)
}

func (cl *client) disarm() {
	if cl.timer != nil {
		cl.timer.Stop()
	}
}

// tick is the timer come due: a wait over, or an attempt whose response
// head is late. The timer may be for something already past: the state
// and the time say.
func (cl *client) tick() {
	if !cl.busy || cl.dead {
		return
	}
	now := cl.srv.clk.mono()
	rq := &cl.rq
	switch {
	case cl.waiting:
		if now >= cl.wakeAt {
			cl.woke(now)
		}
	case rq.up != nil && !rq.gotHead && now >= rq.deadline:
		cl.failed(rq.up, failedLate, errLate)
	}
}

// wait waits as d says: until its time, or a change of the pool.
func (cl *client) wait(d decision) {
	p := cl.rq.h.pool
	cl.waiting, cl.wakeAt = true, d.until
	if cl.waiter.wake == nil {
		el, changed := cl.c.Loop(), cl.poolChanged
		cl.waiter.wake = func() { el.Execute(changed) }
	}
	cl.arm(d.until)
	if !p.watch(&cl.waiter, d.epoch) {
		cl.waiter.wake() // it changed already: look again, off this call
	}
}

// poolChanged is the pool changing while the request waits.
func (cl *client) poolChanged() {
	if cl.waiting && cl.busy && !cl.dead {
		cl.woke(cl.srv.clk.mono())
	}
}

func (cl *client) woke(now int64) {
	cl.waiting = false
	cl.rq.h.pool.unwatch(&cl.waiter)
	cl.disarm()
	cl.carry(cl.x.woke(now))
}

// answered finishes an attempt whose whole answer is in; extra: the
// backend sent more than the answer, so its connection is not reused.
func (cl *client) answered(up *upstream, answer []byte, extra bool) {
	rq := &cl.rq
	cl.disarm()
	out := appendAnswer(cl.ls.out[:0], answer[:rq.headLen], rq.close, rq.http10)
	out = append(out, answer[rq.headLen:]...)
	cl.ls.out = out
	up.c.Discard(len(answer))
	up.cl, rq.up = nil, nil
	if rq.rh.ConnectionClose() || extra {
		up.close()
	} else {
		cl.ls.park(up)
	}
	if d := cl.x.answered(cl.srv.clk.mono(), rq.rh.StatusCode(), false); d.step != stepDeliver {
		cl.carry(d)
		return
	}
	cl.reply(out)
}

// failed ends an attempt on up that got no answer, or not all of it.
func (cl *client) failed(up *upstream, k kind, err error) {
	rq := &cl.rq
	cl.disarm()
	up.cl, rq.up = nil, nil
	up.close()
	rq.h.log.Debug("proxy: attempt failed", "service", rq.h.pool.service, "replica", up.b.replica, "reused", up.reused, "err", err)
	cl.carry(cl.x.failed(cl.srv.clk.mono(), k, up.reused))
}

var (
	errLate      = errors.New("no response head in time")
	errHung      = errors.New("cut: the backend hangs")
	errBadAnswer = errors.New("the backend's answer could not be parsed")
)

// reply writes the exchange's answer and goes on to the next request.
func (cl *client) reply(out []byte) {
	cl.done()
	cl.c.Write(out)
	cl.after()
}

// done ends the exchange's part in the route's bookkeeping.
func (cl *client) done() {
	cl.busy = false
	cl.rq.h.active.Add(-1)
	cl.since = cl.srv.clk.mono()
}

// after closes the connection or serves what the client sent meanwhile.
func (cl *client) after() {
	switch {
	case cl.dead:
	case cl.rq.close || cl.srv.closing.Load():
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
	rq := &cl.rq
	cl.busy = false
	rq.h.active.Add(-1)
	if cl.waiting {
		cl.waiting = false
		rq.h.pool.unwatch(&cl.waiter)
	}
	if up := rq.up; up != nil {
		up.cl, rq.up = nil, nil
		up.close()
	}
	cl.x.clientGone(cl.srv.clk.mono())
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
