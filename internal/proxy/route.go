package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
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

	http *httpRoute // HTTP mode
	srv  *http.Server
	tcp  *tcpRoute // TCP mode

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

// openRoute binds r's port and builds what will serve it; it starts nothing.
func (m *Manager) openRoute(addr string, r Route, svc *service) (*route, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, bindError(r.Service, addr, err)
	}
	lg := m.log.With("project", r.Project, "service", r.Service, "listen", addr)
	rt := &route{addr: addr, spec: r, ln: ln, log: lg, served: make(chan struct{})}
	rt.ctx, rt.cancel = context.WithCancel(context.Background())
	rt.pool = newPool(r.Project, r.Service, svc, m.policy, m.cfg.OnEvent, lg, m.cfg.Hold)
	if r.Mode == TCP {
		rt.tcp = newTCPRoute(rt.pool, m.dialer, lg)
		return rt, nil
	}
	rt.http = newHTTPRoute(rt.pool, m.transport, &m.bufs, lg)
	rt.srv = newHTTPServer(rt.http, lg, rt.ctx)
	return rt, nil
}

// newHTTPServer serves h to clients speaking HTTP/1.1 or cleartext HTTP/2;
// base is the context every request starts from.
func newHTTPServer(h http.Handler, log *slog.Logger, base context.Context) *http.Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &protos,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
}

// update points the route at r's backends and methods, in place.
func (rt *route) update(r Route, drained func(string) bool) {
	if rt.front != nil && !slices.Equal(rt.spec.Hosts, r.Hosts) {
		rt.spec.Hosts = r.Hosts
		rt.front.join(rt) // republishes its host table
	}
	rt.pool.update(r.Backends, drained)
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
	var err error
	if rt.tcp != nil {
		err = rt.tcp.serve(rt.ctx, rt.ln)
	} else {
		err = rt.srv.Serve(rt.ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		rt.log.Error("proxy: listener failed", "err", err)
	}
}

// stop closes the listener at once, lets requests and connections in
// flight finish for up to grace, then cuts the rest, and returns when all
// of the route's handlers have returned.
func (rt *route) stop(grace time.Duration, started bool) {
	if rt.front != nil {
		// Its front stopped sending it requests; those in flight finish.
		waitUntil(time.Now().Add(grace), func() bool { return rt.http.active.Load() == 0 })
		rt.cancel()
		return
	}
	rt.ln.Close()
	if !started {
		rt.cancel()
		return
	}
	deadline := time.Now().Add(grace)
	if rt.srv != nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		rt.srv.Shutdown(ctx) // waits for active connections; hijacked ones are not tracked
		cancel()
	} else {
		waitUntil(deadline, rt.tcp.idle)
	}
	rt.cancel()
	<-rt.served
	if rt.srv != nil {
		rt.srv.Close()
		// Handlers of hijacked connections end once their context is cancelled.
		waitUntil(time.Now().Add(grace), func() bool { return rt.http.active.Load() == 0 })
	} else {
		rt.tcp.cut()
		rt.tcp.wg.Wait()
	}
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(deadline time.Time, cond func() bool) {
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}
