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

// serve proxies one HTTP/1.x request: to a picked backend and, when the
// attempt failed in a way that allows it, once more to another (see
// maxAttempts).
func (h *httpRoute) serve(ctx *fasthttp.RequestCtx) {
	h.active.Add(1)
	defer h.active.Add(-1)
	p := h.pool
	b := p.await(ctx)
	now := mono()
	if b == nil {
		p.svc.none.record(now, http.StatusServiceUnavailable, 0, false)
		h.answer(ctx, http.StatusServiceUnavailable)
		return
	}
	out := outbound{ctx: ctx}
	if err := out.prepare(); err != nil {
		h.answer(ctx, http.StatusBadRequest)
		return
	}
	out.idempotent = isIdempotent(string(ctx.Method()), *h.idempotent.Load())
	out.began = now
	f, code := h.attempts(&out, b, now)
	for f == failConnect && out.replayable() && time.Duration(mono()-out.began)+connectPause < p.hold {
		// Every replica tried refused the connection: a moment when all
		// restart at once. Nothing reached one, so once more after a
		// pause, within the hold.
		time.Sleep(connectPause)
		if b = p.awaitExcept(ctx, out.deadline(p)); b == nil {
			break
		}
		ctx.Response.Reset()
		f, code = h.attempts(&out, b, mono())
	}
	if code != 0 {
		h.answer(ctx, code)
	}
}

// attempts sends the request to b and, when the attempt failed in a way
// that allows it, to others not tried yet (see maxAttempts). It returns
// the last failure and the status tend must answer with (0: a backend's
// answer stands).
func (h *httpRoute) attempts(out *outbound, b *backend, now int64) (failure, int) {
	p := h.pool
	var tried triedSet
	f, code := h.exchange(out, b, now, &tried)
	for n := 1; mayRetry(f, out.idempotent, n) && out.replayable(); n++ {
		// With none to go to now (the others restarting), a retry waits
		// for one within the hold; after a failed connection serve waits.
		var next *backend
		if f == failConnect {
			next = p.pickExcept(mono(), tried.list()...)
		} else {
			next = p.awaitExcept(out.ctx, out.deadline(p), tried.list()...)
		}
		now = mono()
		if next == nil || !p.svc.takeRetry(now, f == failConnect) {
			break
		}
		out.ctx.Response.Reset() // closes a failed answer's body, if streaming
		f, code = h.exchange(out, next, now, &tried)
	}
	return f, code
}

// awaitExcept is a wait for a backend not tried until deadline.
// TEMPORARY: until serve is driven by the exchange.
func (p *pool) awaitExcept(ctx context.Context, deadline int64, tried ...*backend) *backend {
	for {
		epoch := p.epoch.Load()
		now := mono()
		if b := p.next(now, tried); b != nil || now >= deadline {
			return b
		}
		if !p.sleep(ctx, epoch, deadline) {
			return nil
		}
	}
}

// outbound is the request as sent to backends.
type outbound struct {
	ctx    *fasthttp.RequestCtx
	body   []byte    // the whole body, when it was small enough to keep
	stream io.Reader // a large body, sent once as it arrives
	length int       // body length; -1: unknown (sent chunked)

	idempotent bool  // the request may be sent twice
	began      int64 // mono ns when it came
}

// deadline is the end of the request's hold (see Config.Hold), in mono ns.
func (o *outbound) deadline(p *pool) int64 { return o.began + int64(p.hold) }

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

// exchange makes one attempt on b: the response head goes to the client's
// response, and its body whole or as a stream. It returns the failure, if
// any, and the status tend must answer with itself (0: the backend's
// answer stands).
func (h *httpRoute) exchange(o *outbound, b *backend, start int64, tried *triedSet) (failure, int) {
	ctx := o.ctx
	resp := &ctx.Response
	tried.add(b)
	b.begin(mono())
	var uc *upConn
	if o.replayable() {
		uc = b.conns.get() // a body sent once goes on a new connection: an idle one may be stale
	}
	var err error
	sent := false
	for {
		if uc == nil {
			var c net.Conn
			if c, err = h.dial(b); err != nil {
				break
			}
			uc = newUpConn(c)
			if !b.conns.using(uc) {
				uc.close()
				err = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("the replica left rotation")}
				break
			}
		}
		sent = false
		if err = o.send(uc); err == nil {
			sent = true
			err = readHead(uc, &resp.Header, h.responseTimeout, ctx.Conn())
		}
		if err == nil {
			break
		}
		b.conns.drop(uc)
		// A reused connection that broke before any answer: sent again on
		// a new one if nothing reached the backend, or if the request may
		// be sent twice anyway (see afterStale).
		if uc.reused && o.replayable() && (!sent || o.idempotent) && !errors.Is(err, errClientGone) && !isTimeout(err) {
			uc = nil
			if next := h.pool.afterStale(mono(), b, tried.list()); next != b {
				b.end()
				b = next
				tried.add(b)
				b.begin(mono())
			}
			continue
		}
		break
	}
	now := mono()
	took := time.Duration(now - start)
	if err != nil {
		b.end()
		f, code := h.classify(o, err)
		if f == failBroken && !sent && o.replayable() {
			f = failConnect // the request could not be written: it reached no one
		}
		b.stats.record(now, code, took, f != 0)
		if f != 0 {
			b.observe(now, max(took, failSample))
			h.pool.failed(b, f, now)
			h.log.Debug("proxy: attempt failed", "service", h.pool.service, "replica", b.replica, "err", err)
		}
		return f, code
	}
	code := resp.Header.StatusCode()
	if err := h.forwardBody(ctx, uc, b, start, code); err != nil {
		// Nothing has reached the client yet: as if the backend had not answered.
		now = mono()
		b.stats.record(now, http.StatusBadGateway, time.Duration(now-start), true)
		b.observe(now, failSample)
		h.pool.failed(b, failBroken, now)
		resp.Reset()
		return failBroken, http.StatusBadGateway
	}
	return h.pool.answered(b, code, now, took), 0
}

// dial connects to b; its error is marked as a failed connection.
func (h *httpRoute) dial(b *backend) (net.Conn, error) {
	c, err := h.dialer.Dial("tcp", b.host)
	if op := (*net.OpError)(nil); err != nil && (!errors.As(err, &op) || op.Op != "dial") {
		err = &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	return c, err
}

// classify names the failure behind a failed exchange and the status the
// client gets for it. A client that left is no backend's fault.
func (h *httpRoute) classify(o *outbound, err error) (failure, int) {
	var op *net.OpError
	switch {
	case errors.Is(err, errClientGone):
		return 0, statusClientGone
	case o.stream != nil && o.stream.(*clientBody).failed:
		return 0, statusClientGone
	case errors.As(err, &op) && op.Op == "dial":
		return failConnect, http.StatusBadGateway
	case isTimeout(err):
		return failTimeout, http.StatusGatewayTimeout
	}
	return failBroken, http.StatusBadGateway
}

// forwardBody hands the response body to the client's response: read
// whole when small, streamed otherwise; hop headers are dropped. An error
// is a small body that could not be read: the exchange failed.
func (h *httpRoute) forwardBody(ctx *fasthttp.RequestCtx, uc *upConn, b *backend, start int64, code int) error {
	resp := &ctx.Response
	rh := &resp.Header
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
		h.finish(uc, b, start, code, keep)
		return nil
	}
	n := rh.ContentLength()
	if n >= 0 && n <= maxBuffered {
		if err := resp.ReadBody(uc.br, 0); err != nil {
			b.conns.drop(uc)
			b.end()
			return err
		}
		h.finish(uc, b, start, code, keep)
		return nil
	}
	uc.c.SetReadDeadline(time.Time{}) // a stream may run for hours
	u := &upBody{uc: uc, b: b, start: start, code: code, keep: keep}
	switch {
	case n >= 0:
		u.r = io.LimitReader(uc.br, int64(n))
	case n == -1:
		u.r, u.chunks, u.rh = httputil.NewChunkedReader(uc.br), true, rh
	default: // until the backend closes
		u.r, u.keep, n = uc.br, false, -1
	}
	resp.SetBodyStream(u, n)
	return nil
}

// finish ends an exchange whose body is in memory.
func (h *httpRoute) finish(uc *upConn, b *backend, start int64, code int, keep bool) {
	if keep {
		b.conns.put(uc)
	} else {
		b.conns.drop(uc)
	}
	now := mono()
	b.end()
	b.stats.record(now, code, time.Duration(now-start), true)
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
				backend.SetDeadline(time.Now())
			}
			return true // or bytes: a pipelined request, so the client is there
		})
	}()
	return func() bool {
		stopped.Store(true)
		client.SetReadDeadline(time.Now()) // wakes the watch
		<-done
		client.SetReadDeadline(time.Time{})
		return gone.Load()
	}
}
