// Package evloop runs TCP connections on epoll event loops, each on an OS
// thread of its own: the proxy's HTTP/1.x fast path (internal/proxy)
// parses, forwards and answers requests in the loops' callbacks, making
// the system calls nginx makes per request.
//
// Why not gnet, which the proxy first ran on: gnet's loop calls
// runtime.Gosched every time it finds no event waiting, before it blocks.
// On a goroutine of its own that lets the loop move to another thread at
// every pause (measured on 2 CPUs: its work spread over five threads, 6-7 %
// of the CPU idle against nginx's 3 %, 0.91-0.99x nginx's requests); on a
// goroutine locked to its thread it hands the thread's P away and back,
// two thread wake-ups, at every pause (1.6-2x nginx's p99). A loop here
// stays on its thread and passes through the scheduler only when it is
// idle, at most every yieldEvery, which keeps the runtime's monitor from
// treating it as a goroutine that runs too long (bench/README.md,
// "Profiling the proxy by hand").
//
// The rules: everything a Handler is called with runs on the connection's
// loop, one callback at a time; a Conn is touched only on its loop (other
// goroutines go through Loop.Execute).
package evloop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Action tells the loop what to do with a connection after a callback.
type Action int

const (
	None  Action = iota // keep it
	Close               // close it (OnClose follows)
)

// Handler is called on the connection's loop.
type Handler interface {
	// OnOpen is a new connection, registered on its loop.
	OnOpen(c *Conn) Action
	// OnTraffic is bytes read (Peek has them), a Wake, or bytes left
	// unread once the connection's pending writes are out.
	OnTraffic(c *Conn) Action
	// OnClose is the connection closed: by the peer (err nil on a clean
	// end), by an error, or by the handler. The descriptor is gone.
	OnClose(c *Conn, err error)
}

const (
	readSize = 64 << 10 // the most one read takes in
	// yieldEvery is how often an idle loop passes through the scheduler.
	// A goroutine that never does is, after 10 ms, taken for one that
	// runs too long: the runtime's monitor then takes its P back at
	// every system call, every 20 µs, waking a thread each time.
	yieldEvery = 5 * time.Millisecond
)

// Engine is a set of loops.
type Engine struct {
	loops []*Loop
	next  atomic.Uint32
}

// Start starts n loops serving h. They run until the process ends.
func Start(n int, h Handler) (*Engine, error) {
	e := &Engine{}
	for range max(n, 1) {
		l, err := newLoop(h)
		if err != nil {
			return nil, err
		}
		e.loops = append(e.loops, l)
		go l.run()
	}
	return e, nil
}

// Enroll moves nc onto one of the loops, in turn; ctx is the new Conn's
// context. nc is closed: the loop owns a duplicate of its socket.
func (e *Engine) Enroll(nc net.Conn, ctx any) error {
	l := e.loops[int(e.next.Add(1))%len(e.loops)]
	return l.Enroll(nc, ctx)
}

// Loop is one event loop: an epoll instance and the connections on it.
type Loop struct {
	h      Handler
	epfd   int
	wakefd int // an eventfd: tasks are waiting
	conns  map[int]*Conn
	lns    map[int]func(l *Loop, fd int, remote net.Addr) // listening sockets (listen.go)
	buf    []byte                                         // what one read takes in

	mu      sync.Mutex
	tasks   []func()
	running []func()
	woken   atomic.Bool
}

func newLoop(h Handler) (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("evloop: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("evloop: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("evloop: epoll_ctl: %w", err)
	}
	return &Loop{h: h, epfd: epfd, wakefd: wakefd, conns: map[int]*Conn{}, lns: map[int]func(*Loop, int, net.Addr){}, buf: make([]byte, readSize)}, nil
}

// Execute runs f on the loop, soon. Safe from any goroutine.
func (l *Loop) Execute(f func()) {
	l.mu.Lock()
	l.tasks = append(l.tasks, f)
	l.mu.Unlock()
	if l.woken.CompareAndSwap(false, true) {
		var one = [8]byte{1}
		unix.Write(l.wakefd, one[:])
	}
}

// Enroll moves nc onto this loop; ctx is the new Conn's context. nc is
// closed: the loop owns a duplicate of its socket. OnOpen follows on the
// loop, or, should the loop fail to take it, OnClose with the error.
func (l *Loop) Enroll(nc net.Conn, ctx any) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		return fmt.Errorf("evloop: %T has no socket", nc)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		nc.Close()
		return err
	}
	fd := -1
	cerr := raw.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
	remote := nc.RemoteAddr()
	nc.Close()
	if err = errors.Join(cerr, err); err != nil {
		return fmt.Errorf("evloop: dup: %w", err)
	}
	// The duplicate shares the socket's flags, O_NONBLOCK included.
	c := &Conn{fd: fd, loop: l, ctx: ctx, remote: remote}
	l.Execute(func() { l.open(c) })
	return nil
}

func (l *Loop) open(c *Conn) {
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd)}); err != nil {
		unix.Close(c.fd)
		c.closed = true
		l.h.OnClose(c, os.NewSyscallError("epoll_ctl", err))
		return
	}
	l.conns[c.fd] = c
	l.call(c, l.h.OnOpen)
}

// call runs a callback of c's and does what it returns.
func (l *Loop) call(c *Conn, f func(*Conn) Action) {
	if f(c) == Close {
		l.Close(c)
	}
}

// Close closes c; OnClose is called before it returns. Closing a
// connection twice does nothing.
func (l *Loop) Close(c *Conn) { l.close(c, nil) }

func (l *Loop) close(c *Conn, err error) {
	if c.closed {
		return
	}
	c.closed = true
	delete(l.conns, c.fd)
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	c.in, c.view, c.out = nil, nil, nil
	l.h.OnClose(c, err)
}

// run is the loop itself, on an OS thread of its own.
func (l *Loop) run() {
	runtime.LockOSThread()
	events := make([]unix.EpollEvent, 256)
	yielded := time.Now()
	wait := 0 // ms: after events, look again at once before blocking
	for {
		n, err := unix.EpollWait(l.epfd, events, wait)
		if err != nil && err != unix.EINTR {
			time.Sleep(10 * time.Millisecond) // cannot happen with a valid epfd; no hot loop if it does
			continue
		}
		if n <= 0 {
			if wait == 0 && time.Since(yielded) >= yieldEvery {
				yielded = time.Now()
				runtime.Gosched()
			}
			wait = -1
			continue
		}
		wait = 0
		for i := range events[:n] {
			ev := &events[i]
			fd := int(ev.Fd)
			if fd == l.wakefd {
				l.runTasks()
				continue
			}
			c := l.conns[fd]
			if c == nil {
				if accept := l.lns[fd]; accept != nil {
					l.acceptAll(fd, accept)
				}
				continue // or closed earlier in this round
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				l.flush(c)
			}
			if !c.closed && ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				l.read(c)
			}
		}
	}
}

func (l *Loop) runTasks() {
	var b [8]byte
	unix.Read(l.wakefd, b[:])
	l.woken.Store(false)
	l.mu.Lock()
	l.tasks, l.running = l.running[:0], l.tasks
	l.mu.Unlock()
	for i, f := range l.running {
		f()
		l.running[i] = nil
	}
}

// read takes in what c's socket has and gives it to the handler; a
// connection in peek mode is told of its readiness and left to peek.
func (l *Loop) read(c *Conn) {
	if c.peekOnly {
		l.call(c, l.h.OnTraffic)
		if c.closed || c.peekOnly {
			return
		}
	}
	n, err := unix.Read(c.fd, l.buf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil:
		l.close(c, os.NewSyscallError("read", err))
		return
	case n == 0:
		l.close(c, nil)
		return
	}
	if len(c.view) == 0 {
		c.view = l.buf[:n] // no copy unless the handler leaves some
	} else {
		// What is unread, then the new bytes. c.view, not c.in: a
		// Discard outside c's own callbacks moves only the view.
		c.in = append(append(c.in[:0], c.view...), l.buf[:n]...)
		c.view = c.in
	}
	l.traffic(c)
}

// traffic calls OnTraffic and keeps what the handler left unread.
func (l *Loop) traffic(c *Conn) {
	l.call(c, l.h.OnTraffic)
	if c.closed {
		return
	}
	switch {
	case len(c.view) == 0 && cap(c.in) > 4<<10:
		c.in = nil // an idle connection keeps no large buffer
	default:
		c.in = append(c.in[:0], c.view...) // overlapping moves are fine
	}
	c.view = c.in
}

// flush writes what c has waiting, and stops watching for writability
// once it is all out; then OnTraffic hears of what is still unread, which
// a handler may have left until its answers were out.
func (l *Loop) flush(c *Conn) {
	rest, err := writeSome(c.fd, c.out)
	switch {
	case err != nil:
		l.close(c, err)
		return
	case len(rest) > 0:
		c.out = rest
		return
	}
	c.out = nil
	l.watchWrite(c, false)
	if !c.closed && len(c.view) > 0 {
		l.traffic(c)
	}
}

// writeSome writes b to fd until the socket takes no more; rest is what
// it did not take.
func writeSome(fd int, b []byte) (rest []byte, err error) {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return b, nil
		case err != nil:
			return b, os.NewSyscallError("write", err)
		}
		b = b[n:]
	}
	return nil, nil
}

func (l *Loop) watchWrite(c *Conn, on bool) {
	if c.writable == on {
		return
	}
	ev := uint32(unix.EPOLLIN)
	if on {
		ev |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: ev, Fd: int32(c.fd)}); err != nil {
		l.close(c, os.NewSyscallError("epoll_ctl", err))
		return
	}
	c.writable = on
}

// Conn is a connection on a loop. Use it only on its loop.
type Conn struct {
	fd       int
	loop     *Loop
	ctx      any
	remote   net.Addr
	in       []byte // unread bytes kept between callbacks
	view     []byte // the unread bytes: in, or the loop's buffer during OnTraffic
	out      []byte // written, not yet taken by the socket
	writable bool   // EPOLLOUT is watched
	peekOnly bool   // readiness calls OnTraffic; nothing is read (SetPeekOnly)
	closed   bool
}

// SetContext replaces what Context returns: the connection changes hands
// on its loop.
func (c *Conn) SetContext(ctx any) { c.ctx = ctx }

// SetPeekOnly sets whether the loop reads the connection: while on, a
// readable socket calls OnTraffic with nothing read, for the handler to
// look with PeekSocket and decide. A socket left readable calls it again
// at once (epoll is level-triggered): the handler decides on its first
// call, or turns peek mode off, upon which the loop reads at once.
func (c *Conn) SetPeekOnly(on bool) { c.peekOnly = on }

// PeekSocket copies into buf what the socket has received, leaving it
// there. n is 0 with ok true at the peer's end; ok is false when nothing
// has come yet.
func (c *Conn) PeekSocket(buf []byte) (n int, ok bool, err error) {
	for {
		n, _, err = unix.Recvfrom(c.fd, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, false, nil
		case err != nil:
			return 0, true, os.NewSyscallError("recvfrom", err)
		}
		return n, true, nil
	}
}

// Context is what Enroll was given.
func (c *Conn) Context() any { return c.ctx }

// Loop is the connection's loop.
func (c *Conn) Loop() *Loop { return c.loop }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Peek is the bytes read and not discarded; valid until the next Discard
// or the end of the callback.
func (c *Conn) Peek() []byte { return c.view }

// Discard drops the first n unread bytes.
func (c *Conn) Discard(n int) { c.view = c.view[min(n, len(c.view)):] }

// InboundBuffered is how many bytes are read and not discarded.
func (c *Conn) InboundBuffered() int { return len(c.view) }

// OutboundBuffered is how many written bytes wait for the socket.
func (c *Conn) OutboundBuffered() int { return len(c.out) }

// Write sends b, keeping what the socket does not take at once for when
// it can. A failed write closes the connection (OnClose has the error)
// before Write returns.
func (c *Conn) Write(b []byte) {
	if c.closed || len(b) == 0 {
		return
	}
	if len(c.out) > 0 {
		c.out = append(c.out, b...)
		return
	}
	rest, err := writeSome(c.fd, b)
	if err != nil {
		c.loop.close(c, err)
		return
	}
	if len(rest) > 0 {
		c.out = append([]byte(nil), rest...) // b is the caller's
		c.loop.watchWrite(c, true)
	}
}

// Wake calls OnTraffic soon, with whatever is unread.
func (c *Conn) Wake() {
	c.loop.Execute(func() {
		if !c.closed {
			c.loop.traffic(c)
		}
	})
}

// Dup is a duplicate of the connection's socket, for use off the loop.
func (c *Conn) Dup() (int, error) {
	if c.closed {
		return -1, net.ErrClosed
	}
	return unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
}
