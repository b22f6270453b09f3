package evloop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A listening socket on the loops: each loop watches its own duplicate of
// it (EPOLLEXCLUSIVE, so a new connection wakes one loop, not all) and
// accepts on its own thread, and the handler decides there what the new
// socket becomes (Loop.Open, or elsewhere). Why: accepted by a goroutine,
// a connection bound for a loop cost a registration with Go's poller and
// its removal, a duplicate of the socket, a close, a goroutine's wake-up
// and the loop's (the eventfd) before its first byte was read.

// Listening is a listener's socket on every loop, until Close.
type Listening struct {
	mu     sync.Mutex
	closed bool
	on     []*Loop
	fds    []int
}

// acceptPause is how long a loop stops accepting after a failure that is
// not the listener's end (out of descriptors, mostly): level-triggered,
// the listener would wake the loop again at once.
const acceptPause = 100 * time.Millisecond

// Listen has every loop accept ln's connections and give each to accept,
// called on the loop with the new socket (non-blocking, close-on-exec),
// which is then accept's to open on the loop (Loop.Open), use elsewhere or
// close. ln itself is left as it is: closing it does not stop the loops
// (Close does), and it must not be accepted from meanwhile.
func (e *Engine) Listen(ln net.Listener, accept func(l *Loop, fd int, remote net.Addr)) (*Listening, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("evloop: %T has no socket", ln)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	g := &Listening{}
	for _, l := range e.loops {
		fd := -1
		cerr := raw.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
		if err = errors.Join(cerr, err); err != nil {
			g.Close()
			return nil, fmt.Errorf("evloop: dup: %w", err)
		}
		g.on, g.fds = append(g.on, l), append(g.fds, fd)
		added := make(chan error, 1)
		l.Execute(func() {
			l.lns[fd] = accept
			added <- unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(fd)})
		})
		if err := <-added; err != nil {
			g.Close()
			return nil, fmt.Errorf("evloop: epoll_ctl: %w", err)
		}
	}
	return g, nil
}

// Close stops every loop accepting and closes their sockets; it returns
// once no loop will accept again. Not to be called on a loop.
func (g *Listening) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	var wg sync.WaitGroup
	for i, l := range g.on {
		fd := g.fds[i]
		wg.Add(1)
		l.Execute(func() {
			defer wg.Done()
			delete(l.lns, fd)
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
			unix.Close(fd)
		})
	}
	wg.Wait()
}

// acceptAll accepts what is waiting on the listening socket lfd, a batch
// at most, and gives each connection to accept.
func (l *Loop) acceptAll(lfd int, accept func(*Loop, int, net.Addr)) {
	for range 64 {
		fd, sa, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR || err == unix.ECONNABORTED:
			continue
		case err != nil:
			l.pauseAccept(lfd)
			return
		}
		accept(l, fd, sockAddr(sa))
	}
}

// pauseAccept stops watching lfd for acceptPause.
func (l *Loop) pauseAccept(lfd int) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, lfd, nil)
	time.AfterFunc(acceptPause, func() {
		l.Execute(func() {
			if l.lns[lfd] != nil { // not closed meanwhile
				unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(lfd)})
			}
		})
	})
}

// Open makes fd, a connected socket (non-blocking), a connection of this
// loop with context ctx; OnOpen follows at once, or OnClose should the
// loop fail to take it, and then what fd has received is read (a new
// client's request is usually in already), unless OnOpen set peek mode.
// Only on the loop.
func (l *Loop) Open(fd int, remote net.Addr, ctx any) {
	c := &Conn{fd: fd, loop: l, ctx: ctx, remote: remote}
	l.open(c)
	if !c.closed && !c.peekOnly {
		l.read(c)
	}
}

func sockAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return nil
}

// FileConn makes fd, a socket taken from a loop or an accept, a net.Conn
// for goroutines; fd is closed (the net.Conn has a duplicate).
func FileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	return net.FileConn(f)
}
