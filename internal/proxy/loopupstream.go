package proxy

import (
	"errors"

	"github.com/tend-sh/tend/internal/proxy/evloop"
)

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
	rq := &up.cl.rq
	rq.writing = true
	up.c.Write(rq.req)
	rq.writing = false
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
	return up.call(func() { up.answerBytes() })
}

// closed is the connection ending: for a request it carries, a failed
// attempt, of the kind how far it got says.
func (up *upstream) closed(err error) {
	up.dead = true
	cl := up.cl
	if cl == nil {
		up.ls.unpark(up)
		return
	}
	if err == nil {
		err = errors.New("the backend closed the connection")
	}
	k := failedBroken
	switch {
	case up.unsent || cl.rq.writing:
		k = failedWrite // nothing reached the backend
	case cl.rq.gotHead:
		k = failedBad // an answer cut short
	}
	cl.failed(up, k, err)
}

// failed is a dial that did not connect.
func (up *upstream) failed(err error) {
	up.dead = true
	if cl := up.cl; cl != nil {
		cl.failed(up, failedConnect, err)
	}
}

// answerBytes reads what up has of the answer: the head, then the body,
// and finishes the attempt once it has all of it.
func (up *upstream) answerBytes() {
	cl := up.cl
	rq := &cl.rq
	buf := up.c.Peek()
	for !rq.gotHead {
		end := headEnd(buf)
		if end < 0 {
			if len(buf) > maxHead {
				cl.failed(up, failedBad, errBadAnswer)
			}
			return
		}
		if cl.ls.parse(&rq.rh, buf[:end]) != nil {
			cl.failed(up, failedBad, errBadAnswer)
			return
		}
		code := rq.rh.StatusCode()
		if code >= 100 && code < 200 {
			if code == 101 { // no upgrade was asked for
				cl.failed(up, failedBad, errBadAnswer)
				return
			}
			up.c.Discard(end) // an interim answer
			buf = buf[end:]
			continue
		}
		rq.gotHead, rq.headLen, rq.bodyLen = true, end, 0
		if !rq.head && code != 204 && code != 304 {
			n := rq.rh.ContentLength()
			if n == -1 {
				// A chunked answer that is all in already passes as it
				// is; one still coming streams, so a stream of events
				// is not held back.
				var err error
				if n, err = chunkedLen(buf[end:]); err != nil {
					cl.failed(up, failedBad, err)
					return
				}
			}
			if n < 0 || n > maxBuffered {
				cl.disarm()
				cl.stream(up)
				return
			}
			rq.bodyLen = n
		}
	}
	if rq.streamAt != 0 {
		return // waits to be handed over (stream.go)
	}
	if n := rq.headLen + rq.bodyLen; len(buf) >= n {
		cl.answered(up, buf[:n], len(buf) > n)
	}
}
