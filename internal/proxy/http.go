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
	transport       http.RoundTripper
	idempotent      atomic.Pointer[[]string]
	proxy           *httputil.ReverseProxy
	log             *slog.Logger
	active          atomic.Int64 // handlers running
	bodies          map[int][]byte
}

func (m *Manager) newHTTPRoute(p *pool, log *slog.Logger) *httpRoute {
	h := &httpRoute{pool: p, dialer: m.dialer, responseTimeout: m.cfg.ResponseTimeout, transport: m.transport, log: log}
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

func (h *httpRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.active.Add(1)
	defer h.active.Add(-1)
	h.proxy.ServeHTTP(w, r)
}

// RoundTrip sends the request to a picked backend and, when the attempt
// failed in a way that allows it, once more to another.
func (h *httpRoute) RoundTrip(req *http.Request) (*http.Response, error) {
	p := h.pool
	b := p.await(req.Context())
	now := mono()
	if b == nil {
		p.svc.none.record(now, http.StatusServiceUnavailable, 0, false)
		return nil, &proxyError{code: http.StatusServiceUnavailable, err: errNoBackend}
	}
	replay, err := makeReplayable(req)
	if err != nil {
		return nil, &proxyError{code: http.StatusBadRequest, err: err}
	}
	deadline := now + int64(p.hold)
	res, f, err := h.attemptsStd(req, b, now, replay, deadline)
	for f == failConnect && replay && time.Duration(deadline-mono()) > connectPause {
		// Every replica tried refused: once more after a pause, within
		// the hold (as forward.go's serve does).
		select {
		case <-time.After(connectPause):
		case <-req.Context().Done():
			return res, err
		}
		if b = p.awaitExcept(req.Context(), deadline); b == nil {
			break
		}
		req2, ok := resendTo(req, res, b)
		if !ok {
			break
		}
		res, f, err = h.attemptsStd(req2, b, mono(), replay, deadline)
	}
	return res, err
}

// attemptsStd is forward.go's attempts for net/http: it sends req to b
// and, when the attempt failed in a way that allows it, to others not
// tried yet (see maxAttempts), waiting for one until deadline (mono ns) as
// forward.go's attempts does; f is the last attempt's failure, or 0.
func (h *httpRoute) attemptsStd(req *http.Request, b *backend, now int64, replay bool, deadline int64) (*http.Response, failure, error) {
	p := h.pool
	res, f, err := h.try(req, b, now)
	var tried triedSet
	tried.add(b)
	for replay && mayRetry(f, isIdempotent(req.Method, *h.idempotent.Load()), tried.n) {
		var next *backend
		if f == failConnect {
			next = p.pickExcept(mono(), tried.list()...)
		} else {
			next = p.awaitExcept(req.Context(), deadline, tried.list()...)
		}
		now = mono()
		if next == nil || !p.svc.takeRetry(now, f == failConnect) {
			break
		}
		req2, ok := resendTo(req, res, next)
		if !ok {
			break
		}
		tried.add(next)
		res, f, err = h.try(req2, next, now)
	}
	return res, f, err
}

// resendTo is req made ready to go to b instead, the failed attempt's
// answer res (if any) discarded; false when it cannot be sent again (res
// then stands).
func resendTo(req *http.Request, res *http.Response, b *backend) (*http.Request, bool) {
	req2, err := again(req, b.host)
	if err != nil {
		return nil, false
	}
	if res != nil {
		discard(res.Body)
	}
	return req2, true
}

// try makes one attempt on b and accounts for it; f is the failure, or 0.
func (h *httpRoute) try(req *http.Request, b *backend, start int64) (res *http.Response, f failure, err error) {
	req.URL.Host = b.host
	b.begin(start)
	res, err = h.transport.RoundTrip(req)
	now := mono()
	took := time.Duration(now - start)
	if err != nil {
		b.end()
		f, code := classify(req, err)
		b.stats.record(now, code, took, f != 0)
		if f != 0 {
			b.observe(now, max(took, failSample))
			h.pool.failed(b, f, now)
			h.log.Debug("proxy: attempt failed", "service", h.pool.service, "replica", b.replica, "err", err)
		}
		return nil, f, &proxyError{code: code, err: err}
	}
	f = h.pool.answered(b, res.StatusCode, now, took)
	if res.StatusCode == http.StatusSwitchingProtocols {
		return h.upgraded(req, res, b, start)
	}
	res.Body = &trackedBody{ReadCloser: res.Body, b: b, start: start, code: res.StatusCode}
	return res, f, nil
}

// upgraded tracks a switched-protocols connection (WebSocket) until it
// closes; the upgrade types must agree, or ReverseProxy would leave the
// backend connection open.
func (h *httpRoute) upgraded(req *http.Request, res *http.Response, b *backend, start int64) (*http.Response, failure, error) {
	want, got := req.Header.Get("Upgrade"), res.Header.Get("Upgrade")
	if !printable(got) || !strings.EqualFold(want, got) {
		res.Body.Close()
		b.end()
		b.stats.record(mono(), http.StatusBadGateway, 0, false)
		return nil, 0, &proxyError{code: http.StatusBadGateway,
			err: errors.New("backend switched to protocol " + strconv.Quote(got) + ", not " + strconv.Quote(want))}
	}
	rwc, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		res.Body.Close()
		b.end()
		b.stats.record(mono(), http.StatusBadGateway, 0, false)
		return nil, 0, &proxyError{code: http.StatusBadGateway, err: errors.New("101 response with a read-only body")}
	}
	t := &trackedConn{rwc: rwc, trackedBody: trackedBody{ReadCloser: rwc, b: b, start: start, code: res.StatusCode}}
	// ReverseProxy closes the connection when the request ends, except on
	// some of its error paths; this makes sure. Close is idempotent.
	context.AfterFunc(req.Context(), func() { t.Close() })
	res.Body = t
	return res, 0, nil
}

// classify names the failure behind a transport error and the status the
// client gets for it. A request its client gave up on is no backend's fault.
func classify(req *http.Request, err error) (failure, int) {
	if req.Context().Err() != nil {
		return 0, statusClientGone
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return failConnect, http.StatusBadGateway
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return failTimeout, http.StatusGatewayTimeout
	}
	return failBroken, http.StatusBadGateway
}

// answerError is the ReverseProxy's ErrorHandler: a short plain-text
// answer; the detail goes to the debug log.
func (h *httpRoute) answerError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusBadGateway
	var pe *proxyError
	if errors.As(err, &pe) {
		code = pe.code
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

// trackedBody ends its backend's request when ReverseProxy closes it.
type trackedBody struct {
	io.ReadCloser
	b     *backend
	start int64
	code  int
	done  atomic.Bool
}

func (t *trackedBody) Close() error {
	err := t.ReadCloser.Close()
	if t.done.CompareAndSwap(false, true) {
		now := mono()
		t.b.end()
		t.b.stats.record(now, t.code, time.Duration(now-t.start), t.code != http.StatusSwitchingProtocols)
	}
	return err
}

// trackedConn is a trackedBody that can be written: the backend side of
// an upgraded connection.
type trackedConn struct {
	trackedBody
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

// newTransport is the one transport to all backends: HTTP/1.1 with many
// idle connections per backend, since the proxy's own load decides how
// many it needs; backends are on a local bridge, so dials are quick or
// dead.
func newTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error), responseTimeout time.Duration) *http.Transport {
	var protos http.Protocols
	protos.SetHTTP1(true)
	return &http.Transport{
		DialContext:           dial,
		Protocols:             &protos,
		ForceAttemptHTTP2:     false,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: responseTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass encodings through untouched
	}
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
