package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync/atomic"
)

// The net/http path's client to its backends: one attempt, written and
// its response head read on the request's goroutine, over the keep-alive
// connections fasthttp's path uses (upstream.go). http.Transport did this
// until 2026-12-08: it hands every request to two goroutines of the
// connection's, a writer and a reader, which cost more CPU than the rest
// of the proxying (bench/README.md, "HTTP/2 without http.Transport"). A
// stale connection is no longer the transport's to resend: the exchange
// does it, as on the other paths.

// roundTrip makes one attempt of x's req on b (connTo says on which
// connection). It returns the response with its body (or, for a 101, the
// connection) to be read from the backend, or how the attempt failed (k);
// reused: the connection had served an exchange before.
func (h *httpRoute) roundTrip(req *http.Request, b *backend, x *exchange, fresh bool) (res *http.Response, k kind, reused bool, err error) {
	ctx := req.Context()
	uc, err := h.connTo(ctx, b, x, fresh)
	if err != nil {
		return nil, failedConnect, false, err
	}
	// A client that leaves (or resets its stream) cuts the connection, and
	// so whatever the attempt waits for, until the body is passed on.
	stop := context.AfterFunc(ctx, func() { uc.c.SetDeadline(aLongTimeAgo) })
	fail := func(k kind, err error) (*http.Response, kind, bool, error) {
		stop()
		b.conns.drop(uc)
		return nil, k, uc.reused, err
	}
	if err := req.Write(uc.bw); err != nil {
		return fail(classify(err, false), err)
	}
	if err := uc.bw.Flush(); err != nil {
		return fail(classify(err, false), err)
	}
	cut, err := uc.within(h.pool.clk, h.responseTimeout, func() (err error) {
		res, err = readResponse(uc.br, req)
		return err
	})
	if err != nil {
		if cut {
			err = lateErr(err)
		}
		return fail(classify(err, true), err)
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		res.Body = &upgradedConn{uc: uc, b: b, stop: stop}
	} else {
		res.Body = &upResBody{r: res.Body, uc: uc, b: b, keep: !res.Close, stop: stop}
	}
	return res, 0, uc.reused, nil
}

// readResponse reads the response head to req, passing interim answers
// (103 Early Hints and the like) to the client trace ReverseProxy sets,
// which forwards them.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	trace := httptrace.ContextClientTrace(req.Context())
	for {
		res, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if c := res.StatusCode; c < 100 || c > 199 || c == http.StatusSwitchingProtocols {
			return res, nil
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// upResBody is a response body on its backend connection. Once it is
// closed, the connection goes back to the backend's pool if the body was
// read to its end, the backend keeps it alive and the client did not
// leave meanwhile; else it is closed. net/http's own Close is not called:
// it would read the rest of a body nobody wants (a stream may not end).
type upResBody struct {
	r    io.ReadCloser
	uc   *upConn
	b    *backend
	keep bool
	stop func() bool // ends the client's watch over uc; false: it fired
	eof  bool
	done atomic.Bool
}

func (u *upResBody) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err == io.EOF {
		u.eof = true
	}
	return n, err
}

func (u *upResBody) Close() error {
	if u.done.CompareAndSwap(false, true) {
		watched := u.stop()
		u.b.conns.release(u.uc, u.eof && u.keep && watched)
	}
	return nil
}

// upgradedConn is the backend's side of a switched-protocols connection
// (WebSocket), what was read past the head included; closing it closes
// the connection. ReverseProxy reads and writes it from two goroutines
// and may close it from a third: its buffers are not recycled.
type upgradedConn struct {
	uc   *upConn
	b    *backend
	stop func() bool
	done atomic.Bool
}

func (u *upgradedConn) Read(p []byte) (int, error)  { return u.uc.br.Read(p) }
func (u *upgradedConn) Write(p []byte) (int, error) { return u.uc.c.Write(p) }

func (u *upgradedConn) Close() error {
	if u.done.CompareAndSwap(false, true) {
		u.stop()
		u.b.conns.forget(u.uc)
		u.uc.c.Close()
	}
	return nil
}
