package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// route is one bound listener and what serves it.
type route struct {
	addr string // as bound: "127.0.0.1:8080", or ":8080" for all addresses
	spec Route  // the Route it was opened for; Backends as of opening
	pool *pool
	ln   net.Listener
	log  *slog.Logger

	// ctx is the base of every request and connection of the route;
	// cancelling it cuts them.
	ctx    context.Context
	cancel context.CancelFunc

	http *httpRoute  // HTTP and Auto mode
	srv  *httpServer // HTTP and Auto mode, on a listener of its own
	tcp  *tcpRoute   // TCP and Auto mode: accepts the connections (sniff.go)

	started bool          // serve was started (guarded by Manager.mu)
	served  chan struct{} // closed when serve returns

	front *front // the shared listener of a route with Hosts; ln and srv are then nil
}

// listenAddr is the address net.Listen gets for l: an unspecified or
// missing address means every address, IPv4 and IPv6.
func listenAddr(l netip.AddrPort) string {
	if a := l.Addr(); !a.IsValid() || a.IsUnspecified() {
		return ":" + strconv.Itoa(int(l.Port()))
	}
	return l.String()
}

// bindError words a failed bind as `proxy: web: listen 127.0.0.1:8080:
// address already in use`.
func bindError(service, addr string, err error) error {
	var se *os.SyscallError
	var op *net.OpError
	switch {
	case errors.As(err, &se):
		err = se.Err
	case errors.As(err, &op):
		err = op.Err
	}
	return fmt.Errorf("proxy: %s: listen %s: %w", service, addr, err)
}

// bound is the route's address as bound, in the form of its Listen address:
// the port the system or the range gave it.
func (rt *route) bound() string {
	if rt.ln == nil {
		return rt.addr
	}
	host, _, _ := net.SplitHostPort(rt.addr)
	_, port, err := net.SplitHostPort(rt.ln.Addr().String())
	if err != nil {
		return rt.addr
	}
	return net.JoinHostPort(host, port)
}

// listenFirstFree binds r's port, or the first free one of its range; the
// loops may accept its connections (loopListener).
func listenFirstFree(r Route) (*loopListener, error) {
	ln, err := net.Listen("tcp", listenAddr(r.Listen))
	for port := r.Listen.Port() + 1; err != nil && port > r.Listen.Port() && port <= r.ListenEnd; port++ {
		var next error
		if ln, next = net.Listen("tcp", listenAddr(netip.AddrPortFrom(r.Listen.Addr(), port))); next == nil {
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	return newLoopListener(ln), nil
}

// openRoute binds r's port and builds what will serve it; it starts nothing.
func (m *Manager) openRoute(addr string, r Route, svc *service) (*route, error) {
	ln, err := listenFirstFree(r)
	if err != nil {
		return nil, bindError(r.Service, addr, err)
	}
	lg := m.log.With("project", r.Project, "service", r.Service, "listen", ln.Addr().String())
	rt := &route{addr: addr, spec: r, ln: ln, log: lg, served: make(chan struct{})}
	rt.ctx, rt.cancel = context.WithCancel(context.Background())
	rt.pool = newPool(r.Project, r.Service, r.Mode, svc, m.policy, m.cfg.OnEvent, lg, m.cfg.Hold, m.rnd)
	rt.pool.recoveryHold = m.cfg.RecoveryHold
	if r.Mode != HTTP {
		rt.tcp = newTCPRoute(rt.pool, m.dialer, lg)
	}
	if r.Mode != TCP {
		rt.http = m.newHTTPRoute(rt.pool, lg)
		rt.srv = newHTTPServer(ln, only{rt.http}, lg, m.clk)
		rt.srv.std.BaseContext = func(net.Listener) context.Context { return rt.ctx }
	}
	if rt.tcp != nil && rt.srv != nil {
		rt.tcp.http = rt.srv
	}
	return rt, nil
}

// only is the lookup of a listener with one route: every host is its.
type only struct{ h *httpRoute }

func (o only) route([]byte) *httpRoute { return o.h }

// update points the route at r's backends and methods, in place.
func (rt *route) update(r Route, drained func(string) bool) {
	if rt.front != nil && !slices.Equal(rt.spec.Hosts, r.Hosts) {
		rt.spec.Hosts = r.Hosts
		rt.front.join(rt) // republishes its host table
	}
	rt.pool.recovering.Store(r.Recovering) // before the update: its rebuild wakes the waiters
	rt.pool.update(r.Backends, drained)
	rt.pool.isolate(r) // isolation.go
	if rt.http != nil {
		methods := append([]string(nil), r.Idempotent...)
		rt.http.idempotent.Store(&methods)
	}
}

// serve runs until the route stops.
func (rt *route) serve() {
	if rt.front != nil {
		return // the front serves it
	}
	defer close(rt.served)
	if rt.tcp == nil {
		rt.srv.serve(true)
		return
	}
	if rt.srv != nil {
		served := make(chan struct{})
		go func() {
			defer close(served)
			rt.srv.serve(false)
		}()
		defer func() { <-served }()
	}
	if err := rt.tcp.serve(rt.ctx, rt.ln); err != nil && !errors.Is(err, net.ErrClosed) {
		rt.log.Error("proxy: listener failed", "err", err)
	}
}

// stop closes the listener at once, lets requests and connections in
// flight finish for up to grace, then cuts the rest, and returns when all
// of the route's handlers have returned.
func (rt *route) stop(grace time.Duration, started bool) {
	defer rt.pool.closeConns()
	if rt.front != nil {
		// Its front stopped sending it requests; those in flight finish.
		waitUntil(rt.pool.clk, grace, func() bool { return rt.http.active.Load() == 0 })
		rt.cancel()
		return
	}
	rt.ln.Close()
	if !started {
		rt.cancel()
		return
	}
	var wg sync.WaitGroup
	if rt.tcp != nil {
		wg.Go(func() {
			waitUntil(rt.pool.clk, grace, rt.tcp.idle)
			rt.tcp.cut()
			rt.tcp.wg.Wait()
		})
	}
	if rt.srv != nil {
		rt.srv.stop(grace, true) // cuts what outlives the grace; upgraded connections are the route's
		rt.pool.closeConns()
	}
	wg.Wait()
	rt.cancel()
	<-rt.served
	if rt.http != nil {
		// Handlers of upgraded connections end once their context is cancelled.
		waitUntil(rt.pool.clk, grace, func() bool { return rt.http.active.Load() == 0 })
	}
}

// waitUntil polls cond until it holds or d has passed on c.
func waitUntil(c *clk, d time.Duration, cond func() bool) {
	end := c.mono() + int64(d)
	for !cond() && c.mono() < end {
		<-c.After(5 * time.Millisecond)
	}
}
