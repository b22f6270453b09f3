package proxy

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A front is one listener shared by several HTTP routes that name their
// Hosts: each request goes to the route whose Hosts hold its Host header
// (without the port). It is how calls inside a stack reach tend: every
// service answering on port 8080 behind one address, told apart by the
// name the caller used.
type front struct {
	addr   string
	ln     net.Listener
	srv    *httpServer
	routes atomic.Pointer[map[string]*httpRoute] // by host name, lower case

	mu      sync.Mutex // guards members
	members map[*route]bool

	started bool          // guarded by Manager.mu
	served  chan struct{} // closed when serving ends
}

// routeKey identifies a route across Syncs: its address, and for a route
// behind a front, its service too.
func routeKey(r Route) string {
	addr := listenAddr(r.Listen)
	if len(r.Hosts) == 0 {
		return addr
	}
	return addr + " " + r.Project + "/" + r.Service
}

// openFront binds addr for routes that name their hosts.
func (m *Manager) openFront(addr string, service string) (*front, error) {
	ln, err := listen(addr)
	if err != nil {
		return nil, bindError(service, addr, err)
	}
	f := &front{addr: addr, ln: ln, members: map[*route]bool{}, served: make(chan struct{})}
	f.routes.Store(&map[string]*httpRoute{})
	f.srv = newHTTPServer(ln, f, m.log.With("listen", addr), m.clk)
	return f, nil
}

// route is the route the Host header names.
func (f *front) route(host []byte) *httpRoute {
	return (*f.routes.Load())[hostOnly(string(host))]
}

// hostOnly is a Host header's name, lower case, without the port.
func hostOnly(host string) string {
	host = strings.ToLower(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// join puts rt behind f; leave takes it away and tells whether f is empty.
func (f *front) join(rt *route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members[rt] = true
	f.publish()
}

func (f *front) leave(rt *route) (empty bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.members, rt)
	f.publish()
	return len(f.members) == 0
}

// publish rebuilds the host table. Call with f.mu held.
func (f *front) publish() {
	table := map[string]*httpRoute{}
	for rt := range f.members {
		for _, h := range rt.spec.Hosts {
			table[strings.ToLower(h)] = rt.http
		}
	}
	f.routes.Store(&table)
}

func (f *front) serve() {
	defer close(f.served)
	f.srv.serve(true)
}

// stop closes the listener and lets requests in flight finish for up to grace.
func (f *front) stop(grace time.Duration, started bool) {
	f.srv.stop(grace, started)
	if started {
		<-f.served
	}
}

// openMember makes the route of r behind the front on addr, opening the
// front if it is the first. Call with m.mu held.
func (m *Manager) openMember(addr string, r Route, svc *service) (*route, error) {
	if r.Mode != HTTP {
		return nil, fmt.Errorf("proxy: %s: listen %s: routing by host name needs HTTP", r.Service, addr)
	}
	f := m.fronts[addr]
	if f == nil {
		var err error
		if f, err = m.openFront(addr, r.Service); err != nil {
			return nil, err
		}
		m.fronts[addr] = f
		if m.state == running {
			m.startFront(f)
		}
	}
	lg := m.log.With("project", r.Project, "service", r.Service, "listen", addr, "hosts", r.Hosts)
	rt := &route{addr: addr, spec: r, log: lg, served: make(chan struct{}), front: f}
	rt.ctx, rt.cancel = context.WithCancel(context.Background())
	rt.pool = newPool(r.Project, r.Service, HTTP, svc, m.policy, m.cfg.OnEvent, lg, m.cfg.Hold, m.rnd)
	rt.pool.recoveryHold = m.cfg.RecoveryHold
	rt.http = m.newHTTPRoute(rt.pool, lg)
	close(rt.served) // the front serves it
	f.join(rt)
	return rt, nil
}

// startFront serves f. Call with m.mu held, while running.
func (m *Manager) startFront(f *front) {
	f.started = true
	m.spawn(f.serve)
}

// leaveFront takes a retired route from its front and stops the front when
// it was the last. Call with m.mu held.
func (m *Manager) leaveFront(rt *route) {
	f := rt.front
	if !f.leave(rt) {
		return
	}
	delete(m.fronts, f.addr)
	f.ln.Close()
	started := f.started
	m.spawn(func() { f.stop(m.cfg.Grace, started) })
}
