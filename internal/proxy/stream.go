package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"time"
)

// stream hands an answer the loop does not buffer (over 64 KiB, chunked,
// or until the backend closes) to a goroutine, with both connections: the
// loop cannot slow a backend down to a slow client's pace, a goroutine
// blocked in a write can. Once the answer is through, the client's
// connection goes back to the loops.
func (cl *client) stream(up *upstream) {
	rq := &cl.rq
	if cl.c.OutboundBuffered() > 0 {
		// An earlier answer is still on its way out: the connection can
		// leave the loop only without bytes of its own left in it.
		if rq.streamAt == 0 {
			rq.streamAt = cl.srv.clk.mono()
		}
		el := cl.c.Loop()
		cl.srv.clk.AfterFunc(time.Millisecond, func() {
			el.Execute(func() {
				if cl.busy && rq.up == up && !cl.dead && !up.dead {
					cl.stream(up)
				}
			})
		})
		return
	}
	code, n := rq.rh.StatusCode(), rq.rh.ContentLength()
	if d := cl.x.answered(cl.srv.clk.mono(), code, true); d.step != stepDeliver {
		up.cl, rq.up = nil, nil // a 502 or 503 that goes elsewhere
		up.close()
		cl.carry(d)
		return
	}
	upBytes := up.c.Peek()
	upBytes = bytes.Clone(upBytes)
	pending := cl.c.Peek()
	pending = bytes.Clone(pending)
	upc, err1 := dupConn(up.c)
	cc, err2 := dupConn(cl.c)

	untilClose := n < -1
	s := &streamed{
		srv: cl.srv, h: rq.h, b: up.b, x: cl.x, length: n, pending: pending,
		head:        appendAnswer(nil, upBytes[:rq.headLen], rq.close || untilClose, rq.http10),
		body:        upBytes[rq.headLen:],
		keepUp:      !rq.rh.ConnectionClose() && !untilClose,
		closeClient: rq.close || untilClose,
	}
	up.cl, rq.up = nil, nil
	up.close()
	cl.busy, cl.moved = false, true // the route's active count is the stream's now
	cl.close()
	if err1 != nil || err2 != nil {
		for _, c := range []net.Conn{upc, cc} {
			if c != nil {
				c.Close()
			}
		}
		s.x.clientGone(cl.srv.clk.mono())
		rq.h.active.Add(-1)
		cl.srv.log.Debug("proxy: handing a stream over failed", "err", errors.Join(err1, err2))
		return
	}
	go s.run(cc, upc)
}

// streamed is an answer being streamed by a goroutine.
type streamed struct {
	srv         *httpServer
	h           *httpRoute
	b           *backend
	x           exchange // the request's, from the head on
	length      int      // the body's: -1 chunked, -2 until the backend closes
	head        []byte   // for the client
	body        []byte   // what the loop had read of the body
	pending     []byte   // what the client sent after its request
	keepUp      bool     // the backend's connection may serve another exchange
	closeClient bool
}

// clientErr is a write to the client that failed.
type clientErr struct{ error }

func (s *streamed) run(client, backend net.Conn) {
	defer s.h.active.Add(-1)
	uc := newUpConn(&replayConn{Conn: backend, pending: s.body})
	bw := bufio.NewWriterSize(client, 32<<10)
	_, err := bw.Write(s.head)
	if err != nil {
		err = clientErr{err}
	}
	if err == nil {
		switch {
		case s.length == -1:
			err = copyChunks(bw, uc.br)
		default: // a length, or -2: until the backend closes
			err = pump(bw, uc.br, int64(s.length))
		}
	}
	if err == nil && s.keepUp {
		s.b.conns.put(uc)
	} else {
		uc.close()
	}
	s.x.finished(s.srv.clk.mono(), err == nil)
	if err != nil || s.closeClient || s.srv.closing.Load() {
		client.Close()
		return
	}
	s.srv.adopt(client, s.pending) // back to the loops
}

// pump copies n bytes of br to bw (n < 0: up to the end), flushing
// whenever br has nothing more at hand: a trickling stream reaches the
// client as it comes.
func pump(bw *bufio.Writer, br *bufio.Reader, n int64) error {
	r := io.Reader(br)
	if n >= 0 {
		r = io.LimitReader(br, n)
	}
	buf := make([]byte, 32<<10)
	for {
		m, err := r.Read(buf)
		if m > 0 {
			if _, werr := bw.Write(buf[:m]); werr != nil {
				return clientErr{werr}
			}
			n -= int64(m)
		}
		if err == io.EOF {
			if n > 0 {
				return io.ErrUnexpectedEOF // the backend stopped short
			}
			if ferr := bw.Flush(); ferr != nil {
				return clientErr{ferr}
			}
			return nil
		}
		if err != nil {
			return err
		}
		if br.Buffered() == 0 {
			if ferr := bw.Flush(); ferr != nil {
				return clientErr{ferr}
			}
		}
	}
}

// copyChunks passes a chunked body through as it is, trailer included,
// and stops after it.
func copyChunks(bw *bufio.Writer, br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, err := chunkSize(line)
		if err != nil {
			return err
		}
		if _, err := bw.Write(line); err != nil {
			return clientErr{err}
		}
		if size == 0 {
			break
		}
		if err := pump(bw, br, size+2); err != nil { // the data and its CRLF
			return err
		}
	}
	for { // the trailer, up to its blank line
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if _, err := bw.Write(line); err != nil {
			return clientErr{err}
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			if err := bw.Flush(); err != nil {
				return clientErr{err}
			}
			return nil
		}
	}
}

// chunkSize reads a chunk-size line: hex digits, maybe extensions.
func chunkSize(line []byte) (int64, error) {
	hex := bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(hex, ';'); i >= 0 {
		hex = hex[:i]
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(hex)), 16, 62)
	if err != nil || n < 0 {
		return 0, errors.New("a malformed chunk size")
	}
	return n, nil
}
