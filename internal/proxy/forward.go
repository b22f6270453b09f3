package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// maxBuffered is the largest response body read whole before it is sent
// on; a larger one, or one of unknown length, streams through.
const maxBuffered = 64 << 10

// serve proxies one HTTP/1.x request: its exchange decides, this carries
// it out (exchange.go).
func (h *httpRoute) serve(ctx *fasthttp.RequestCtx) {
	h.active.Add(1)
	defer h.active.Add(-1)
	out := outbound{ctx: ctx}
	if !sane(ctx.Method(), ctx.RequestURI(), ctx.Host()) {
		h.answer(ctx, http.StatusBadRequest)
		return
	}
	if err := out.prepare(); err != nil {
		h.answer(ctx, http.StatusBadRequest)
		return
	}
	x := newExchange(h.pool, isIdempotent(string(ctx.Method()), *h.idempotent.Load()), out.replayable())
	for d := x.start(h.now()); ; {
		switch d.step {
		case stepSend:
			ctx.Response.Reset()
			d = h.attempt(&out, &x, d.b, d.fresh)
		case stepWait:
			if !h.pool.sleep(ctx, d.epoch, d.until) {
				d = x.clientGone(h.now())
				continue
			}
			d = x.woke(h.now())
		case stepAnswer:
			if d.fb != nil {
				d.fb.fill(&ctx.Response)
				return
			}
			h.answer(ctx, d.code)
			return
		case stepDeliver:
			return
		default: // stepDone: the client left
			h.answer(ctx, statusClientGone)
			return
		}
	}
}

// outbound is the request as sent to backends.
type outbound struct {
	ctx    *fasthttp.RequestCtx
	body   []byte    // the whole body, when it was small enough to keep
	stream io.Reader // a large body, sent once as it arrives
	length int       // body length; -1: unknown (sent chunked)
}

// prepare takes the body: whole when it is small (so the request can be
// sent again), as a stream otherwise.
func (o *outbound) prepare() error {
	req := &o.ctx.Request
	if !req.IsBodyStream() {
		o.body = req.Body()
		o.length = len(o.body)
		return nil
	}
	n := req.Header.ContentLength()
	if n >= 0 && n <= maxReplayBody {
		o.body = make([]byte, n)
		if _, err := io.ReadFull(o.ctx.RequestBodyStream(), o.body); err != nil {
			return err
		}
		o.length = n
		return nil
	}
	// A long upload: the server's read deadline bounds request heads, not this.
	o.ctx.Conn().SetReadDeadline(time.Time{})
	o.stream = &clientBody{r: o.ctx.RequestBodyStream()}
	o.length = max(n, -1)
	return nil
}

// replayable reports whether the request may be sent again.
func (o *outbound) replayable() bool { return o.stream == nil }

// clientFailed reports whether reading the client's streamed body failed:
// the client's doing, not the backend's.
func (o *outbound) clientFailed() bool { return o.stream != nil && o.stream.(*clientBody).failed }

// send writes the request on uc.
func (o *outbound) send(uc *upConn) error {
	uc.head = appendHead(uc.head[:0], &o.ctx.Request.Header, o.ctx.RemoteAddr(), o.length)
	uc.bw.Write(uc.head)
	switch {
	case o.stream == nil:
		uc.bw.Write(o.body)
	case o.length < 0:
		if err := writeChunked(uc.bw, o.stream); err != nil {
			return err
		}
	default:
		if _, err := io.CopyN(uc.bw, o.stream, int64(o.length)); err != nil {
			return err
		}
	}
	return uc.bw.Flush()
}

// clientBody is a client's streamed request body; it remembers whether
// reading it failed, which is the client's doing, not the backend's.
type clientBody struct {
	r      io.Reader
	failed bool
}

func (c *clientBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.failed = true
	}
	return n, err
}

// attempt makes one attempt on b (connTo says on which connection): the
// request written, the response head into the client's response and
// its body whole or set to stream; it returns what the exchange decides
// next.
func (h *httpRoute) attempt(o *outbound, x *exchange, b *backend, fresh bool) decision {
	uc, err := h.connTo(context.Background(), b, x, fresh)
	if err != nil {
		return h.failed(x, b, failedConnect, false, err)
	}
	if err := o.send(uc); err != nil {
		b.conns.drop(uc)
		if o.clientFailed() {
			return x.clientGone(h.now())
		}
		return h.failed(x, b, classify(err, false), uc.reused, err)
	}
	if err := readHead(uc, &o.ctx.Response.Header, h.responseTimeout, o.ctx.Conn(), h.pool.clk); err != nil {
		b.conns.drop(uc)
		if errors.Is(err, errClientGone) {
			return x.clientGone(h.now())
		}
		return h.failed(x, b, classify(err, true), uc.reused, err)
	}
	return h.forwardBody(o.ctx, x, uc, b)
}

// failed is an attempt on b that failed with k.
func (h *httpRoute) failed(x *exchange, b *backend, k kind, reused bool, err error) decision {
	h.log.Debug("proxy: attempt failed", "service", h.pool.service, "replica", b.replica, "reused", reused, "err", err)
	return x.failed(h.now(), k, reused)
}

// forwardBody hands the response body to the client's response: read
// whole when small (nothing reaches the client before it is all in, so a
// body cut short is a failed attempt), streamed otherwise; hop headers
// are dropped.
func (h *httpRoute) forwardBody(ctx *fasthttp.RequestCtx, x *exchange, uc *upConn, b *backend) decision {
	resp := &ctx.Response
	rh := &resp.Header
	code := rh.StatusCode()
	keep := !rh.ConnectionClose()
	if c := rh.Peek("Connection"); len(c) > 0 {
		for _, t := range connectionTokens(c) {
			rh.DelBytes(t)
		}
	}
	for _, k := range responseHop { // a Trailer declaration stays: the trailer follows (upBody)
		rh.Del(k)
	}
	if ctx.IsHead() || code == http.StatusNoContent || code == http.StatusNotModified {
		resp.SkipBody = true
		b.conns.release(uc, keep)
		return x.answered(h.now(), code, false)
	}
	n := rh.ContentLength()
	if n >= 0 && n <= maxBuffered {
		// Within what is left of the response timeout.
		left := h.responseTimeout - time.Duration(h.now()-x.sentAt)
		if _, err := uc.within(h.pool.clk, left, func() error { return resp.ReadBody(uc.br, 0) }); err != nil {
			b.conns.drop(uc)
			return h.failed(x, b, failedBad, false, err)
		}
		b.conns.release(uc, keep)
		return x.answered(h.now(), code, false)
	}
	d := x.answered(h.now(), code, true)
	if d.step != stepDeliver {
		b.conns.drop(uc)
		return d
	}
	u := &upBody{uc: uc, b: b, x: x, keep: keep}
	switch {
	case n >= 0:
		u.r = io.LimitReader(uc.br, int64(n))
	case n == -1:
		u.r, u.chunks, u.rh = httputil.NewChunkedReader(uc.br), true, rh
	default: // until the backend closes
		u.r, u.keep, n = uc.br, false, -1
	}
	resp.SetBodyStream(u, n)
	return d
}

// answer is tend's own short plain-text answer.
func (h *httpRoute) answer(ctx *fasthttp.RequestCtx, code int) {
	if code == statusClientGone {
		code = http.StatusBadGateway // nobody is listening; keep it valid anyway
	}
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(code)
	resp.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp.Header.Set("X-Content-Type-Options", "nosniff")
	resp.SetBodyRaw(h.bodies[code])
}

// clientWatchAfter is how long an exchange waits for its backend's answer
// before the client's connection is watched: a quick exchange pays for
// nothing.
const clientWatchAfter = time.Second

// watchClient notices a client that closes its connection while its
// request waits for the backend, and cuts the backend connection so the
// exchange ends. stop ends the watch and reports whether the client left.
func watchClient(client, backend net.Conn) (stop func() bool) {
	if rc, ok := client.(*replayConn); ok {
		client = rc.Conn
	}
	raw, ok := client.(syscall.Conn)
	if !ok {
		return func() bool { return false }
	}
	rc, err := raw.SyscallConn()
	if err != nil {
		return func() bool { return false }
	}
	var gone, stopped atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		rc.Read(func(fd uintptr) bool {
			if stopped.Load() {
				return true
			}
			var b [1]byte
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err == syscall.EAGAIN || err == syscall.EINTR {
				return false // nothing yet: wait until the connection is readable
			}
			if n == 0 || err != nil { // closed or reset
				gone.Store(true)
				backend.SetDeadline(aLongTimeAgo)
			}
			return true // or bytes: a pipelined request, so the client is there
		})
	}()
	return func() bool {
		stopped.Store(true)
		client.SetReadDeadline(aLongTimeAgo) // wakes the watch
		<-done
		client.SetReadDeadline(time.Time{})
		return gone.Load()
	}
}
