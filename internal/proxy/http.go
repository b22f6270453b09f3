package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// statusClientGone is what the metrics record for a request whose client
// left (or whose route was cut) before the answer: nginx's 499.
const statusClientGone = 499

// errNoBackend ends a request no replica can take.
var errNoBackend = errors.New("no ready replica")

// proxyError carries the status the ErrorHandler answers with.
type proxyError struct {
	code int
	err  error
	fb   *canned // the fallback to answer with, if any
}

func (e *proxyError) Error() string { return e.err.Error() }
func (e *proxyError) Unwrap() error { return e.err }

// httpRoute proxies one HTTP route. HTTP/1.x requests take the lean path
// of forward.go; the connections net/http serves (cleartext HTTP/2,
// upgrades; see httpServer) go through httputil.ReverseProxy, which does
// the HTTP (headers, upgrades, flushing, trailers) with httpRoute as its
// Transport, picking the backend for each attempt.
type httpRoute struct {
	pool            *pool
	dialer          *net.Dialer
	responseTimeout time.Duration
	idempotent      atomic.Pointer[[]string]
	proxy           *httputil.ReverseProxy
	log             *slog.Logger
	active          atomic.Int64 // handlers running
	bodies          map[int][]byte
}

func (m *Manager) newHTTPRoute(p *pool, log *slog.Logger) *httpRoute {
	h := &httpRoute{pool: p, dialer: m.dialer, responseTimeout: m.cfg.ResponseTimeout, log: log}
	h.idempotent.Store(new([]string))
	h.proxy = &httputil.ReverseProxy{
		Rewrite:   rewrite,
		Transport: h,
		// Zero, not -1: ReverseProxy already flushes every write of a
		// response of unknown length (streams, chunked) or of type
		// text/event-stream. -1 would also make every fixed-length
		// response pay a timer goroutine and a separate write for its
		// headers: 12-15 % more CPU per small request, measured.
		FlushInterval: 0,
		BufferPool:    &m.bufs,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ErrorHandler:  h.answerError,
	}
	h.bodies = map[int][]byte{
		http.StatusBadRequest:         []byte("tend: could not read the request body\n"),
		http.StatusBadGateway:         []byte("tend: no replica of " + p.service + " answered\n"),
		http.StatusServiceUnavailable: []byte("tend: no ready replica of " + p.service + "\n"),
		http.StatusGatewayTimeout:     []byte("tend: no replica of " + p.service + " answered in time\n"),
	}
	return h
}

// rewrite keeps the client's Host and path and sets X-Forwarded-For, -Host
// and -Proto. tend is the edge: forwarding headers from the client are
// dropped (ReverseProxy strips them before Rewrite), not trusted.
func rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.SetXForwarded()
}

// now is the route's clock's mono.
func (h *httpRoute) now() int64 { return h.pool.now() }

func (h *httpRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.active.Add(1)
	defer h.active.Add(-1)
	h.proxy.ServeHTTP(w, r)
}

// RoundTrip drives the request's exchange: each attempt is one round trip
// to the backend the exchange chose (roundtrip.go), and the exchange
// decides what follows (exchange.go).
func (h *httpRoute) RoundTrip(req *http.Request) (*http.Response, error) {
	replay, err := makeReplayable(req)
	if err != nil {
		return nil, &proxyError{code: http.StatusBadRequest, err: err}
	}
	ctx := req.Context()
	x := newExchange(h.pool, isIdempotent(req.Method, *h.idempotent.Load()), replay)
	var res *http.Response
	last, sent := errNoBackend, false
	for d := x.start(h.now()); ; {
		switch d.step {
		case stepSend:
			var k kind
			var reused bool
			res, k, reused, err = h.try(req, &x, d, sent)
			sent = true
			if err != nil {
				last = err
				if ctx.Err() != nil {
					x.clientGone(h.now())
					return nil, &proxyError{code: statusClientGone, err: err}
				}
				h.log.Debug("proxy: attempt failed", "service", h.pool.service, "replica", d.b.replica, "reused", reused, "err", err)
				d = x.failed(h.now(), k, reused)
				continue
			}
			d = x.answered(h.now(), res.StatusCode, true)
			if d.step != stepDeliver {
				discard(res.Body)
			}
		case stepWait:
			if !h.pool.sleep(ctx, d.epoch, d.until) {
				x.clientGone(h.now())
				return nil, &proxyError{code: statusClientGone, err: ctx.Err()}
			}
			d = x.woke(h.now())
		case stepAnswer:
			return nil, &proxyError{code: d.code, err: last, fb: d.fb}
		case stepDeliver:
			return h.deliver(req, res, &x), nil
		default: // stepDone: the client left
			return nil, &proxyError{code: statusClientGone, err: ctx.Err()}
		}
	}
}

// try sends the request where d says: as it came the first time, then
// (resend) as a copy with its body rewound. It
// returns the answer, or how the attempt failed and whether on a reused
// connection. A 101 whose protocol is not the one asked for is a bad
// answer.
func (h *httpRoute) try(req *http.Request, x *exchange, d decision, resend bool) (*http.Response, kind, bool, error) {
	b := d.b
	if resend {
		var err error
		if req, err = again(req, b.host); err != nil {
			return nil, failedBroken, false, err
		}
	}
	req.URL.Host = b.host
	res, k, reused, err := h.roundTrip(req, b, x, d.fresh)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		return res, k, reused, err
	}
	want, got := req.Header.Get("Upgrade"), res.Header.Get("Upgrade")
	if !printable(got) || !strings.EqualFold(want, got) {
		res.Body.Close()
		return nil, failedBad, reused, errors.New("backend switched to protocol " + strconv.Quote(got) + ", not " + strconv.Quote(want))
	}
	return res, 0, reused, nil
}

// deliver hands the answer to ReverseProxy with its body tracked, so the
// exchange hears when it ends; an upgraded connection (WebSocket) is
// tracked until it closes.
func (h *httpRoute) deliver(req *http.Request, res *http.Response, x *exchange) *http.Response {
	t := &trackedBody{ReadCloser: res.Body, x: x}
	if rwc, ok := res.Body.(io.ReadWriteCloser); ok && res.StatusCode == http.StatusSwitchingProtocols {
		t.upgraded = true
		tc := &trackedConn{rwc: rwc, trackedBody: t}
		// ReverseProxy closes the connection when the request ends, except
		// on some of its error paths; this makes sure. Close is idempotent.
		context.AfterFunc(req.Context(), func() { tc.Close() })
		res.Body = tc
		return res
	}
	res.Body = t
	return res
}

// classify names how an attempt failed from its error; sent: the request
// was written (as far as the driver knows). A client that left is the
// driver's to notice before: it is no failure.
func classify(err error, sent bool) kind {
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "dial":
		return failedConnect
	case isTimeout(err):
		return failedLate
	case !sent:
		return failedWrite
	}
	return failedBroken
}

// answerError is the ReverseProxy's ErrorHandler: a short plain-text
// answer; the detail goes to the debug log.
func (h *httpRoute) answerError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusBadGateway
	var pe *proxyError
	if errors.As(err, &pe) {
		code = pe.code
	}
	if pe != nil && pe.fb != nil {
		pe.fb.fillStd(w)
		return
	}
	if code == statusClientGone {
		code = http.StatusBadGateway // nobody is listening; keep it valid anyway
	}
	h.log.Debug("proxy: request failed", "service", h.pool.service, "status", code, "err", err)
	body := h.bodies[code]
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}

// trackedBody tells the exchange when ReverseProxy has passed the body on
// (read to its end) or given up, by closing it.
type trackedBody struct {
	io.ReadCloser
	x        *exchange
	upgraded bool // a switched-protocols connection: its end is its close
	eof      bool
	done     atomic.Bool
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		t.eof = true
	}
	return n, err
}

func (t *trackedBody) Close() error {
	err := t.ReadCloser.Close()
	if t.done.CompareAndSwap(false, true) {
		t.x.finished(t.x.p.now(), t.eof || t.upgraded)
	}
	return err
}

// trackedConn is a trackedBody that can be written: the backend side of
// an upgraded connection.
type trackedConn struct {
	*trackedBody
	rwc io.ReadWriteCloser
}

func (t *trackedConn) Write(p []byte) (int, error) { return t.rwc.Write(p) }

// discard drops a response body that will not be forwarded, reading a
// little of it so its connection can be reused.
func discard(body io.ReadCloser) {
	io.CopyN(io.Discard, body, 4<<10)
	body.Close()
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// bufferPool recycles ReverseProxy's copy buffers; storing array pointers
// keeps Put from allocating.
type bufferPool struct{ p sync.Pool }

const copyBufSize = 32 << 10

func (bp *bufferPool) Get() []byte {
	if b, ok := bp.p.Get().(*[copyBufSize]byte); ok {
		return b[:]
	}
	return make([]byte, copyBufSize)
}

func (bp *bufferPool) Put(b []byte) {
	if cap(b) >= copyBufSize {
		bp.p.Put((*[copyBufSize]byte)(b[:copyBufSize]))
	}
}
