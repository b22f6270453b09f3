package proxy

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// A port nobody declared (Mode Auto) is served in HTTP mode for clients that
// speak HTTP and in TCP mode for the rest, told apart by their first bytes:
// almost no compose file says app_protocol, and TCP mode cannot retry a
// request whose replica died under it. The bytes are peeked, never read, so
// the connection goes to the event loops (or a backend) as it came.
//
// Who speaks first decides: a client that sends an HTTP/1.x request line
// (HTTP/2's preface is one) is HTTP; any other first bytes from the client
// are TCP; so is a backend that speaks first (MySQL, SMTP, SSH greet their
// clients). So that server-first protocols wait for nothing, a backend is
// dialled as soon as the client has not spoken at once; a client that then
// speaks HTTP costs that backend one empty connection, closed.

// sniffVerdict is what a client's first bytes say.
type sniffVerdict uint8

const (
	sniffMore  sniffVerdict = iota // a request line so far: wait for more
	sniffHTTP                      // an HTTP/1.x request line, or HTTP/2's preface
	sniffOther                     // anything else
)

const (
	// sniffMax is the longest request line waited for; a client still
	// short of its end is taken for HTTP (the HTTP server answers it).
	sniffMax = maxHead
	// sniffPatience is how long a client that sent part of a request
	// line may take for the rest before it is served as TCP, which is
	// always safe.
	sniffPatience = time.Second
)

// sniff tells whether buf, a client's first bytes, begin an HTTP/1.x request:
// `METHOD SP TARGET SP HTTP/d.d` up to its line end. The version is required:
// a Redis inline command ("GET key\r\n") is no HTTP request.
func sniff(buf []byte) sniffVerdict {
	const version = "HTTP/"
	i := 0
	for i < len(buf) && buf[i] >= 'A' && buf[i] <= 'Z' {
		i++
	}
	switch {
	case i == len(buf):
		return more(buf)
	case i == 0 || i > 20 || buf[i] != ' ':
		return sniffOther
	}
	i++
	start := i
	for i < len(buf) && buf[i] > ' ' && buf[i] < 0x7f {
		i++
	}
	switch {
	case i == len(buf):
		return more(buf)
	case i == start || buf[i] != ' ':
		return sniffOther
	}
	i++
	rest := buf[i:]
	if n := min(len(rest), len(version)); !bytes.Equal(rest[:n], []byte(version)[:n]) {
		return sniffOther
	} else if n < len(version) {
		return more(buf)
	}
	rest = rest[len(version):]
	for k, want := range []byte("0.0\r\n") {
		switch {
		case k >= len(rest):
			return more(buf)
		case want == '0' && rest[k] >= '0' && rest[k] <= '9', rest[k] == want:
		case k == 3 && rest[k] == '\n': // a bare LF ends the line too
			return sniffHTTP
		default:
			return sniffOther
		}
	}
	return sniffHTTP
}

// more is sniffMore, or sniffHTTP for a request line too long to wait for.
func more(buf []byte) sniffVerdict {
	if len(buf) >= sniffMax {
		return sniffHTTP
	}
	return sniffMore
}

// peekResult is what a peek at a connection found: bytes (n > 0), its end
// (n == 0, err nil: the peer closed), or an error.
type peekResult struct {
	n   int
	err error
}

// peekNow peeks at what c has received, without waiting; ok is false when
// nothing has come yet.
func peekNow(c net.Conn, buf []byte) (n int, ok bool, err error) {
	raw, err := rawConn(c)
	if err != nil {
		return 0, false, err
	}
	cerr := raw.Control(func(fd uintptr) {
		n, ok, err = peekFD(int(fd), buf)
	})
	return n, ok, errors.Join(cerr, err)
}

// peekWait peeks at c, waiting for bytes or its end (or its read deadline);
// after a first peek of have bytes, it waits for more than have.
func peekWait(c net.Conn, buf []byte, have int) (int, error) {
	raw, err := rawConn(c)
	if err != nil {
		return 0, err
	}
	var n int
	var perr error
	rerr := raw.Read(func(fd uintptr) bool {
		var ok bool
		n, ok, perr = peekFD(int(fd), buf)
		// Bytes already seen: the poller wakes again when more arrive.
		return perr != nil || (ok && (n == 0 || n > have))
	})
	if rerr != nil {
		return 0, rerr
	}
	return n, perr
}

// peekFD is one non-blocking peek; ok is false when nothing is there yet.
func peekFD(fd int, buf []byte) (int, bool, error) {
	for {
		n, _, err := syscall.Recvfrom(fd, buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, false, nil
		case err != nil:
			return 0, true, os.NewSyscallError("recvfrom", err)
		}
		return n, true, nil
	}
}

func rawConn(c net.Conn) (syscall.RawConn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, errors.New("proxy: connection has no socket")
	}
	return sc.SyscallConn()
}

// clientFirst watches a new client connection until it has said what it
// speaks: it sends one verdict on the channel it returns, sniffHTTP,
// sniffOther, or (gone true) the client closing or failing. stop ends the
// watch early; the channel then gets nothing.
type clientFirst struct {
	c       net.Conn
	auto    bool // HTTP is told from TCP; otherwise any byte is TCP
	stopped atomic.Bool
	done    chan clientVerdict // the verdict, at most one
	exited  chan struct{}
}

type clientVerdict struct {
	v    sniffVerdict
	gone bool
}

func watchFirst(c net.Conn, auto bool) *clientFirst {
	w := &clientFirst{c: c, auto: auto, done: make(chan clientVerdict, 1), exited: make(chan struct{})}
	go w.run()
	return w
}

func (w *clientFirst) run() {
	defer close(w.exited)
	buf := make([]byte, sniffMax)
	have := 0
	for {
		n, err := peekWait(w.c, buf, have)
		if w.stopped.Load() {
			return
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.done <- clientVerdict{v: sniffOther} // a partial line for too long
			return
		case err != nil || n == 0:
			w.done <- clientVerdict{gone: true}
			return
		}
		v := sniffOther
		if w.auto {
			v = sniff(buf[:n])
		}
		if v != sniffMore {
			w.done <- clientVerdict{v: v}
			return
		}
		if have == 0 {
			w.c.SetReadDeadline(socketDeadline(sniffPatience))
		}
		have = n
	}
}

// finish ends the watch, if it has not ended, and returns once it has,
// with the connection's read deadline cleared: c is the caller's again.
func (w *clientFirst) finish() {
	w.stopped.Store(true)
	w.c.SetReadDeadline(aLongTimeAgo) // wakes a peek that waits
	<-w.exited
	w.c.SetReadDeadline(time.Time{})
}
