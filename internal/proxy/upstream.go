package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tend-sh/tend/internal/clock"
)

// The proxy's HTTP/1.1 client to its backends. It is its own, not
// http.Transport or fasthttp.HostClient, because a proxy needs what
// neither gives together: the whole exchange on the request's goroutine
// (Transport hands every request to two per-connection goroutines, which
// cost more CPU than the proxying itself), a deadline on the response
// header alone (a stream may run for hours), and a way to abandon an
// exchange whose client left (close its connection). fasthttp parses the
// answers' heads; this file writes the requests and keeps the connections,
// which net/http's path (roundtrip.go) shares.

// maxIdlePerBackend bounds the idle keep-alive connections kept per
// backend; the proxy's own load decides how many it needs.
const maxIdlePerBackend = 256

// upConn is one connection to a backend.
type upConn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool // it served an exchange before: it may have been closed while idle
	head   []byte

	raw  syscall.RawConn // c's socket, to ask whether it is still open (alive); nil: not asked
	peek func(fd uintptr) bool
	open bool    // what peek found
	one  [1]byte // peek's buffer
}

// idleConns is a backend's connections: the idle keep-alive ones, and
// those in use, so a route that ends can cut them.
type idleConns struct {
	mu     sync.Mutex
	idle   []*upConn
	inUse  map[*upConn]struct{}
	closed bool // the backend is gone: connections are closed, not kept
}

// connTo is a connection to b for an attempt of x's: a parked one, or a
// new one. Unless the attempt may be sent again on a new connection if
// its parked one turns out closed (x.resendable, and not fresh: see
// exchange.failed), a parked one is used only once the socket says it is
// still open (alive), which it asks at the cost of a system call: a
// request that cannot be resent is not sent on a connection the backend
// closed while idle, and one that must not go on a stale connection
// (fresh) still needs no new one when a parked one is open.
func (h *httpRoute) connTo(ctx context.Context, b *backend, x *exchange, fresh bool) (*upConn, error) {
	unchecked := !fresh && x.resendable()
	for {
		uc := b.conns.take()
		if uc == nil {
			break
		}
		if unchecked || uc.alive() {
			return uc, nil
		}
		b.conns.drop(uc)
	}
	c, err := h.dialer.DialContext(ctx, "tcp", b.host)
	if err != nil {
		return nil, err
	}
	uc := newUpConn(c)
	if !b.conns.using(uc) {
		uc.close()
		return nil, errors.New("the replica left rotation")
	}
	return uc, nil
}

// take takes the most recently used idle connection, or nil.
func (ic *idleConns) take() *upConn {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	n := len(ic.idle)
	if n == 0 {
		return nil
	}
	uc := ic.idle[n-1]
	ic.idle[n-1] = nil
	ic.idle = ic.idle[:n-1]
	if ic.inUse == nil { // its connections so far came from the loops' streams
		ic.inUse = map[*upConn]struct{}{}
	}
	ic.inUse[uc] = struct{}{}
	return uc
}

// using counts a new connection as in use; false when the backend is gone.
func (ic *idleConns) using(uc *upConn) bool {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.closed {
		return false
	}
	if ic.inUse == nil {
		ic.inUse = map[*upConn]struct{}{}
	}
	ic.inUse[uc] = struct{}{}
	return true
}

// put keeps uc for the next exchange, or closes it when the pool is full
// or closed.
func (ic *idleConns) put(uc *upConn) {
	uc.reused = true
	ic.mu.Lock()
	delete(ic.inUse, uc)
	if !ic.closed && len(ic.idle) < maxIdlePerBackend {
		ic.idle = append(ic.idle, uc)
		ic.mu.Unlock()
		return
	}
	ic.mu.Unlock()
	uc.close()
}

// isClosed reports whether the backend is gone.
func (ic *idleConns) isClosed() bool {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.closed
}

// release is uc's exchange done: kept for the next if keep, else closed.
func (ic *idleConns) release(uc *upConn, keep bool) {
	if keep {
		ic.put(uc)
	} else {
		ic.drop(uc)
	}
}

// drop closes uc, which failed or cannot serve another exchange.
func (ic *idleConns) drop(uc *upConn) {
	ic.forget(uc)
	uc.close()
}

// forget stops tracking uc, which its holder closes: an upgraded
// connection, whose buffers stay its own, since two goroutines use them.
func (ic *idleConns) forget(uc *upConn) {
	ic.mu.Lock()
	delete(ic.inUse, uc)
	ic.mu.Unlock()
}

// close closes the idle connections, and those in use as they come back.
func (ic *idleConns) close() {
	ic.mu.Lock()
	idle := ic.idle
	ic.idle, ic.closed = nil, true
	ic.mu.Unlock()
	for _, uc := range idle {
		uc.close()
	}
}

// cut ends the exchanges under way: their connections' reads and writes
// fail at once, and the exchanges close them.
func (ic *idleConns) cut() {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	for uc := range ic.inUse {
		uc.c.SetDeadline(aLongTimeAgo)
	}
}

var (
	readers sync.Pool // *bufio.Reader
	writers sync.Pool // *bufio.Writer
)

func newUpConn(c net.Conn) *upConn {
	br, _ := readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(c, 4<<10)
	} else {
		br.Reset(c)
	}
	bw, _ := writers.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(c, 4<<10)
	} else {
		bw.Reset(c)
	}
	uc := &upConn{c: c, br: br, bw: bw}
	if sc, ok := c.(syscall.Conn); ok {
		uc.raw, _ = sc.SyscallConn()
		uc.peek = uc.peekOpen
	}
	return uc
}

// alive reports whether a parked connection may serve another exchange:
// the backend has neither closed it nor sent anything unasked while it
// was idle. A backend that closes idle connections (Node.js does after
// 5 s) would otherwise fail the next request sent on one, a 502 for a
// POST; http.Transport notices such closes with a reader goroutine per
// connection, this asks the socket once, without waiting.
func (uc *upConn) alive() bool {
	if uc.br.Buffered() > 0 {
		return false
	}
	if uc.raw == nil {
		return true
	}
	uc.open = false
	if err := uc.raw.Read(uc.peek); err != nil {
		return false
	}
	return uc.open
}

// peekOpen is alive's look at the socket: open when there is nothing to
// read yet (not even the end).
func (uc *upConn) peekOpen(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), uc.one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	uc.open = err == syscall.EAGAIN || err == syscall.EINTR
	return true // done: never wait
}

// close closes the connection and recycles its buffers.
func (uc *upConn) close() {
	uc.c.Close()
	uc.br.Reset(nil)
	uc.bw.Reset(nil)
	readers.Put(uc.br)
	writers.Put(uc.bw)
}

// errClientGone ends an exchange whose client left.
var errClientGone = errors.New("the client left")

// hopHeaders are the headers of one connection, not forwarded: RFC 9110
// section 7.6.1 and the ones HTTP/1.1 proxies have always dropped; the
// X-Forwarded ones tend sets itself (tend is the edge: a client's are not
// trusted); Host, Content-Length and Transfer-Encoding are written anew.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Host",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
}

// responseHop are the response headers not forwarded to clients.
var responseHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Upgrade"}

// skipHeader reports whether the header line's name is one not forwarded:
// in hop, or one the message's Connection header names.
func skipHeader(name []byte, hop []string, connTokens [][]byte) bool {
	for _, h := range hop {
		if len(name) == len(h) && bytes.EqualFold(name, []byte(h)) {
			return true
		}
	}
	for _, t := range connTokens {
		if bytes.EqualFold(name, t) {
			return true
		}
	}
	return false
}

// connectionTokens are the header names a Connection header lists, other
// than close and keep-alive.
func connectionTokens(v []byte) [][]byte {
	var out [][]byte
	for len(v) > 0 {
		var tok []byte
		tok, v, _ = bytes.Cut(v, []byte(","))
		tok = bytes.TrimSpace(tok)
		if len(tok) > 0 && !bytes.EqualFold(tok, []byte("close")) && !bytes.EqualFold(tok, []byte("keep-alive")) {
			out = append(out, tok)
		}
	}
	return out
}

// appendHeaders appends the header lines of raw (CRLF- or LF-ended, up
// to an empty line) each after a CRLF, less those hop and the message's
// Connection headers name.
func appendHeaders(dst, raw []byte, hop []string) []byte {
	var tokens [][]byte
	for rest := raw; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if name, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Connection")) {
			tokens = append(tokens, connectionTokens(bytes.TrimSpace(v))...)
		}
	}
	kept := false // the last header line was written
	for len(raw) > 0 {
		var line []byte
		line, raw, _ = bytes.Cut(raw, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			// An obs-fold continues the line before: it goes with it, on
			// one line (RFC 9112 5.2), never on its own, where the receiver
			// would fold it into whatever header tend wrote last (Host).
			if kept {
				dst = append(append(dst, ' '), bytes.TrimSpace(line)...)
			}
			continue
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if kept = ok && !skipHeader(bytes.TrimSpace(name), hop, tokens); !kept {
			continue
		}
		dst = append(dst, "\r\n"...)
		dst = append(dst, line...)
	}
	return dst
}

// appendHead appends the request head for a backend: the client's request
// line and headers, less the hop ones, with Host and X-Forwarded-*. length
// is the body's length, or -1 for a chunked body.
func appendHead(dst []byte, h *fasthttp.RequestHeader, remote net.Addr, length int) []byte {
	dst = append(dst, h.Method()...)
	dst = append(dst, ' ')
	dst = append(dst, h.RequestURI()...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	host := h.Host()
	dst = append(dst, host...)
	dst = appendHeaders(dst, h.RawHeaders(), hopHeaders)
	dst = append(dst, "\r\nX-Forwarded-For: "...)
	if a, ok := remote.(*net.TCPAddr); ok {
		dst = a.AddrPort().Addr().Unmap().AppendTo(dst)
	}
	dst = append(dst, "\r\nX-Forwarded-Host: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nX-Forwarded-Proto: http"...)
	switch {
	case length < 0:
		dst = append(dst, "\r\nTransfer-Encoding: chunked"...)
	case length > 0 || h.IsPost() || h.IsPut() || h.IsPatch():
		// An empty POST, PUT or PATCH says so, as net/http does: some
		// servers answer 411 to one without a length.
		dst = append(dst, "\r\nContent-Length: "...)
		dst = strconv.AppendInt(dst, int64(length), 10)
	}
	return append(dst, "\r\n\r\n"...)
}

// writeChunked sends a body of unknown length (a client's large upload)
// in chunks.
func writeChunked(bw *bufio.Writer, r io.Reader) error {
	cw := httputil.NewChunkedWriter(bw)
	if _, err := io.Copy(cw, r); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// readHead reads the response head into resp, skipping interim answers
// (100 Continue and the like), within timeout on c. An answer slower than
// clientWatchAfter has the client's connection watched meanwhile, and
// errClientGone is the error when the client left.
func readHead(uc *upConn, resp *fasthttp.ResponseHeader, timeout time.Duration, client net.Conn, c clock.Clock) error {
	first := min(timeout, clientWatchAfter)
	cut, err := uc.within(c, first, func() error { return readHeadOnce(uc, resp) })
	if err == nil || !cut {
		return err
	}
	if first == timeout {
		return lateErr(err)
	}
	// Slow: what is read so far stays buffered; read on while watching.
	stop := watchClient(client, uc.c)
	cut, err = uc.within(c, timeout-first, func() error { return readHeadOnce(uc, resp) })
	if stop() {
		return errClientGone
	}
	if err != nil && cut {
		return lateErr(err)
	}
	return err
}

func readHeadOnce(uc *upConn, resp *fasthttp.ResponseHeader) error {
	for {
		if err := resp.Read(uc.br); err != nil {
			return err
		}
		if c := resp.StatusCode(); c < 100 || c > 199 || c == 101 {
			return nil
		}
	}
}

// within runs read, whose reads of uc are cut once d has passed on c
// (the proxy's clock, not the socket's deadline: a fake clock drives it
// too), and reports whether they were. Nothing of the cut outlives it.
func (uc *upConn) within(c clock.Clock, d time.Duration, read func() error) (cut bool, err error) {
	var mu sync.Mutex
	done := false
	t := c.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			cut = true
			uc.c.SetReadDeadline(aLongTimeAgo)
		}
	})
	err = read()
	t.Stop()
	mu.Lock()
	done = true
	if cut {
		uc.c.SetReadDeadline(time.Time{})
	}
	mu.Unlock()
	return cut, err
}

// lateErr marks err, a read the response timeout cut, as a deadline
// passing: fasthttp's read errors do not all wrap it.
func lateErr(err error) error {
	if isTimeout(err) {
		return err
	}
	return fmt.Errorf("%w: %w", os.ErrDeadlineExceeded, err)
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool } // fasthttp's ErrTimeout is no net.Error
	return errors.As(err, &t) && t.Timeout()
}

// upBody streams a response body from its backend to the client, and
// when the server has written it (or given up), ends the backend's
// request and keeps or closes the connection.
type upBody struct {
	r       io.Reader // the body's bytes on uc.br, framed
	uc      *upConn
	b       *backend
	x       *exchange                // told when the body is through
	chunks  bool                     // chunked: a trailer follows the last chunk
	rh      *fasthttp.ResponseHeader // the client's, which takes the trailer
	trailer error                    // reading the trailer failed: the connection is not reused
	keep    bool                     // the connection may serve another exchange once the body is read
	eof     bool
	done    atomic.Bool
}

func (u *upBody) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err == io.EOF && !u.eof { // once: a reader may be asked again after its end
		u.eof = true
		if u.chunks {
			u.trailer = readTrailer(u.uc.br, u.rh)
		}
	}
	return n, err
}

// Close is called by the server once it has written the body, or failed to.
func (u *upBody) Close() error {
	if !u.done.CompareAndSwap(false, true) {
		return nil
	}
	u.b.conns.release(u.uc, u.eof && u.keep && u.trailer == nil)
	u.x.finished(u.x.p.now(), u.eof)
	return nil
}

// readTrailer reads what follows a chunked body's last chunk, up to the
// empty line, into h, whose response the server writes after the last
// chunk. Most have none: fasthttp's reader would wait for a line more.
func readTrailer(br *bufio.Reader, h *fasthttp.ResponseHeader) error {
	b, err := br.Peek(1)
	if err == nil && b[0] == '\r' {
		b, err = br.Peek(2)
	}
	switch {
	case err != nil:
		return err
	case string(b) == "\n" || string(b) == "\r\n":
		_, err = br.Discard(len(b))
		return err
	}
	return h.ReadTrailer(br)
}
