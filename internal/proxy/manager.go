package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tend-sh/tend/internal/clock"
)

// Mode is how a route proxies.
type Mode uint8

const (
	HTTP Mode = iota // HTTP/1.1 and cleartext HTTP/2 from clients, HTTP/1.1 to backends
	TCP              // bytes, both ways
	// Auto is HTTP for the clients whose first bytes are an HTTP request and
	// TCP for the others, and for backends that speak first (sniff.go).
	Auto
)

// MarshalText writes a Mode by its name, as the API shows it.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads a Mode's name.
func (m *Mode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "http":
		*m = HTTP
	case "tcp":
		*m = TCP
	case "auto":
		*m = Auto
	default:
		return fmt.Errorf("proxy: unknown mode %q", b)
	}
	return nil
}

func (m Mode) String() string {
	switch m {
	case TCP:
		return "tcp"
	case Auto:
		return "auto"
	}
	return "http"
}

// Backend is one replica the proxy may send traffic to.
type Backend struct {
	ID      string         // container ID: the backend's identity across Syncs
	Replica string         // "web/2", for metrics labels and the journal
	Addr    netip.AddrPort // container IP and container port
	Ready   bool           // readiness from tend's probes; an unready backend gets no new requests
}

// Route is one published port of one service.
type Route struct {
	Project, Service string
	// Listen is the host address and port (compose ports: host_ip:host_port).
	// An unspecified or zero address listens on every address.
	Listen netip.AddrPort
	// ListenEnd, when above Listen's port, makes Listen a range (compose's
	// "8000-8010:80"): the route listens on the first port of it that is free.
	ListenEnd uint16
	Mode      Mode
	Backends  []Backend
	// Idempotent lists methods that are safe to retry besides GET, HEAD and
	// OPTIONS (HTTP mode).
	Idempotent []string
	// Hosts, when set, are the names (Host header, without the port) this
	// route answers to, on a listener it shares with other HTTP routes that
	// name theirs: how several services on one port are reached through one
	// address. A Host no route names gets a 404.
	Hosts []string
	// Isolated: the service is quarantined; callers get Fallback (HTTP) or
	// a closed connection (TCP) at once. RetryAfter is when it is next
	// tried, for the fallback's Retry-After (isolation.go).
	Isolated   bool
	RetryAfter time.Duration
	Fallback   Fallback
	Breaker    Breaker // the service's request breaker (HTTP)
	// Recovering: no replica is ready and one is being restarted or made
	// anew (the supervisor knows): a request or connection that finds none
	// ready waits up to Config.RecoveryHold for it, not Hold, so a service
	// of one replica that the engine takes seconds to start loses nothing.
	Recovering bool
}

// Config configures a Manager. The zero value is ready to use.
type Config struct {
	// Log receives the proxy's own troubles; nil discards them.
	Log *slog.Logger
	// Registry gets the proxy's Prometheus collectors; nil: a registry of
	// the Manager's own. Handler serves it if it is also a Gatherer, and
	// the default gatherer otherwise.
	Registry prometheus.Registerer
	// OnEvent receives ejections and readmissions, for the journal. It is
	// called on the request path: it must return quickly.
	OnEvent func(Event)
	// DialTimeout bounds connecting to a backend; zero: 250 ms. Backends
	// are on a local bridge, where a connection is made in well under a
	// millisecond unless its SYN was dropped, which the kernel resends
	// only after a second: a killed replica's address drops them until the
	// engine has noticed (measured: 150-650 ms after the kill on a loaded
	// host), and each such dial held its request for the whole timeout.
	DialTimeout time.Duration
	// ResponseTimeout bounds the wait for a backend's response headers
	// (HTTP); beyond it the client gets 504. Zero: 60 s.
	ResponseTimeout time.Duration
	// Grace is how long requests and connections in flight may take to
	// finish when their route is removed or Run ends; zero: 5 s.
	Grace time.Duration
	// EjectAfter is the number of consecutive failures (5xx responses or
	// failed connections) that eject a backend; zero: 5.
	EjectAfter int
	// EjectFor is the first ejection's length; the n-th in a row lasts n
	// times as long; zero: 10 s.
	EjectFor time.Duration
	// EjectMax caps an ejection's length; zero: 5 min.
	EjectMax time.Duration
	// Clock is the proxy's time: its waits and timeouts, and its
	// statistics' seconds; nil: clock.Real.
	Clock clock.Clock
	// Hold is how long a request or connection that finds no ready replica
	// waits for one before it is refused (503, or a closed connection);
	// zero: 2 s, negative: no wait. It covers a replica restarting and the
	// moment before a new replica's readiness reaches the proxy.
	Hold time.Duration
	// RecoveryHold is the hold of a route marked Recovering; zero: 10 s.
	// It is never shorter than Hold.
	RecoveryHold time.Duration
}

// Manager holds one listener per Route and balances each over its ready
// backends. Build it with NewManager, run it with Run, and feed it with
// Sync; see the package documentation.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	clk     *clk
	rnd     randSource // the balancers' draws
	policy  ejectPolicy
	metrics *metrics
	dialer  *net.Dialer
	bufs    bufferPool

	mu       sync.Mutex
	state    runState
	routes   map[string]*route // by routeKey: listen address, and service behind a front
	fronts   map[string]*front // shared listeners of routes with Hosts, by listen address
	services map[svcKey]*service
	drained  map[string]bool // backend IDs taken out by Drain
	wg       sync.WaitGroup  // route and housekeeping goroutines
}

type runState uint8

const (
	idle runState = iota
	running
	stopped
)

type svcKey struct{ project, service string }

// NewManager returns a Manager with cfg's defaults filled in. It starts
// nothing and binds nothing.
func NewManager(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.DialTimeout = orDefault(cfg.DialTimeout, 250*time.Millisecond)
	cfg.ResponseTimeout = orDefault(cfg.ResponseTimeout, 60*time.Second)
	cfg.Grace = orDefault(cfg.Grace, 5*time.Second)
	cfg.EjectAfter = orDefault(cfg.EjectAfter, 5)
	cfg.EjectFor = orDefault(cfg.EjectFor, 10*time.Second)
	cfg.EjectMax = orDefault(cfg.EjectMax, 5*time.Minute)
	if cfg.Hold == 0 {
		cfg.Hold = 2 * time.Second
	}
	cfg.RecoveryHold = max(orDefault(cfg.RecoveryHold, 10*time.Second), cfg.Hold)
	if cfg.Hold < 0 {
		cfg.RecoveryHold = cfg.Hold // no wait is no wait
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	m := &Manager{
		cfg:      cfg,
		log:      cfg.Log,
		clk:      newClk(cfg.Clock),
		rnd:      globalRand{},
		policy:   ejectPolicy{after: cfg.EjectAfter, base: cfg.EjectFor, max: cfg.EjectMax},
		dialer:   &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		routes:   make(map[string]*route),
		fronts:   make(map[string]*front),
		services: make(map[svcKey]*service),
		drained:  make(map[string]bool),
	}
	m.metrics = newMetrics(cfg.Registry, cfg.Log, newInflightCollector(m.eachInflight))
	m.registerIsolation() // isolation.go
	return m
}

// orDefault is v, or def when v is zero (or negative).
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Run serves the routes given to Sync, before and after it is called,
// until ctx ends; then it closes the listeners, gives requests in flight
// Config.Grace to finish, and returns once its goroutines have exited.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.state != idle {
		m.mu.Unlock()
		return errors.New("proxy: Run called twice")
	}
	m.state = running
	for _, rt := range m.routes {
		m.start(rt)
	}
	for _, f := range m.fronts {
		m.startFront(f)
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go m.housekeep(ctx)

	<-ctx.Done()
	m.mu.Lock()
	m.state = stopped
	for key, rt := range m.routes {
		delete(m.routes, key)
		m.retire(rt)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// start serves rt. Call with mu held, while running.
func (m *Manager) start(rt *route) {
	rt.started = true
	m.spawn(rt.serve)
}

// spawn runs fn in a goroutine Run waits for.
func (m *Manager) spawn(fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
}

// retire stops rt: its port is free when retire returns; its requests in
// flight finish in the background. Call with mu held.
func (m *Manager) retire(rt *route) {
	if rt.front != nil {
		m.leaveFront(rt)
	} else {
		rt.ln.Close()
	}
	started := rt.started
	m.spawn(func() { rt.stop(m.cfg.Grace, started) })
}

// housekeep brings ejected backends back on time even when no request
// comes to notice, and forgets removed backends once they are idle.
func (m *Manager) housekeep(ctx context.Context) {
	defer m.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.clk.After(time.Second):
		}
		now := m.clk.mono()
		for _, p := range m.pools() {
			if t := p.readmitAt.Load(); t != 0 && now >= t {
				p.readmit(now)
			}
			p.checkStalls(now)
		}
	}
}

func (m *Manager) pools() []*pool {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := make([]*pool, 0, len(m.routes))
	for _, rt := range m.routes {
		ps = append(ps, rt.pool)
	}
	return ps
}

// Sync makes the Manager serve exactly routes. It is idempotent: a route
// that stays keeps its listener, connections and requests in flight, and
// only its backends are updated; new routes are bound and removed ones
// closed (their requests in flight finish). A route whose port cannot be
// bound is reported in the error and tried again on the next Sync; the
// others work regardless.
func (m *Manager) Sync(routes []Route) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == stopped {
		return errors.New("proxy: sync after stop")
	}
	want, order, errs := byAddress(routes)
	m.forgetDrained(routes)
	for addr, rt := range m.routes {
		if r, ok := want[addr]; ok && r.Project == rt.spec.Project && r.Service == rt.spec.Service && r.Mode == rt.spec.Mode {
			continue
		}
		delete(m.routes, addr)
		m.retire(rt)
	}
	for _, addr := range order {
		r := want[addr]
		rt := m.routes[addr]
		if rt == nil {
			var err error
			open := m.openRoute
			if len(r.Hosts) > 0 {
				open = m.openMember
			}
			if rt, err = open(listenAddr(r.Listen), r, m.service(r.Project, r.Service)); err != nil {
				errs = append(errs, err)
				continue
			}
			m.routes[addr] = rt
			if m.state == running {
				m.start(rt)
			}
		}
		rt.update(r, func(id string) bool { return m.drained[id] })
	}
	m.pruneServices()
	return errors.Join(errs...)
}

// byAddress keys routes by routeKey, in their order, refusing a second
// route on an address unless both name their Hosts.
func byAddress(routes []Route) (want map[string]Route, order []string, errs []error) {
	want = make(map[string]Route, len(routes))
	owner := map[string]Route{} // by listen address: the first route on it
	for _, r := range routes {
		addr := listenAddr(r.Listen)
		if other, dup := owner[addr]; dup && (len(r.Hosts) == 0 || len(other.Hosts) == 0 || want[routeKey(r)].Service != "") {
			errs = append(errs, fmt.Errorf("proxy: %s: listen %s: already published by %s", r.Service, addr, other.Service))
			continue
		}
		if _, dup := owner[addr]; !dup {
			owner[addr] = r
		}
		want[routeKey(r)] = r
		order = append(order, routeKey(r))
	}
	return want, order, errs
}

// forgetDrained drops the drained IDs no route lists any more. Call with
// mu held.
func (m *Manager) forgetDrained(routes []Route) {
	listed := make(map[string]bool)
	for _, r := range routes {
		for _, b := range r.Backends {
			listed[b.ID] = true
		}
	}
	for id := range m.drained {
		if !listed[id] {
			delete(m.drained, id)
		}
	}
}

// service returns the statistics of project/name, made on first use. Call
// with mu held.
func (m *Manager) service(project, name string) *service {
	k := svcKey{project, name}
	s := m.services[k]
	if s == nil {
		s = newService(project, name, m.metrics, m.clk)
		m.services[k] = s
	}
	return s
}

// pruneServices forgets services without routes and replicas without
// backends. Call with mu held.
func (m *Manager) pruneServices() {
	keep := make(map[*service]map[string]bool)
	for _, rt := range m.routes {
		names := keep[rt.pool.svc]
		if names == nil {
			names = make(map[string]bool)
			keep[rt.pool.svc] = names
		}
		rt.pool.mu.Lock()
		for _, b := range rt.pool.all {
			names[b.replica] = true
		}
		rt.pool.mu.Unlock()
	}
	for k, s := range m.services {
		names, ok := keep[s]
		if !ok {
			delete(m.services, k)
			continue
		}
		s.keepReplicas(names)
	}
}

// Drain takes backend id out of rotation at once, on every route, and
// returns when its requests and connections in flight have finished or
// ctx ends. The backend stays out until a Sync no longer lists it.
func (m *Manager) Drain(ctx context.Context, id string) {
	m.mu.Lock()
	m.drained[id] = true
	var bs []*backend
	for _, rt := range m.routes {
		bs = append(bs, rt.pool.drain(id)...)
	}
	m.mu.Unlock()
	busy := func() bool {
		for _, b := range bs {
			if b.inflight.Load() > 0 {
				return true
			}
		}
		return false
	}
	if !busy() {
		return
	}
	for busy() {
		select {
		case <-ctx.Done():
			return
		case <-m.clk.After(10 * time.Millisecond):
		}
	}
}

// Answered says how long ago the replica with container id last answered a
// HTTP request with a status under 500, over all its routes; false when it
// never did (TCP mode tells nothing: a hung process's kernel still accepts). The supervisor weighs a
// check that timed out against it: a replica that answers is not hung.
func (m *Manager) Answered(id string) (time.Duration, bool) {
	m.mu.Lock()
	var last int64
	for _, rt := range m.routes {
		last = max(last, rt.pool.lastAnswer(id))
	}
	m.mu.Unlock()
	if last == 0 {
		return 0, false
	}
	return time.Duration(m.clk.mono() - (last - 1)), true
}

// Hung reports whether the replica with container id is out of rotation
// on some route for hanging: requests waited on it and it answered nothing
// (stall.go). The supervisor replaces it.
func (m *Manager) Hung(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rt := range m.routes {
		if rt.pool.hung(id) {
			return true
		}
	}
	return false
}

// Addr reports the address the route opened for listen is bound to, and
// whether there is one: with port 0 in Route.Listen, the system picks the
// port, as compose does for a published port without a host port.
func (m *Manager) Addr(listen netip.AddrPort) (netip.AddrPort, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rt := m.routes[listenAddr(listen)]
	if rt == nil {
		return netip.AddrPort{}, false
	}
	return netip.MustParseAddrPort(rt.ln.Addr().String()), true
}

// Handler serves the Prometheus metrics of Config.Registry (/metrics).
func (m *Manager) Handler() http.Handler { return m.metrics.handler() }
