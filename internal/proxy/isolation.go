package proxy

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/tend-sh/tend/internal/breaker"
)

// Isolation: a route the supervisor marks Isolated (its service is
// quarantined) answers every HTTP request at once with the service's
// Fallback and closes TCP connections at once, never holding callers; and
// each HTTP service has a request breaker (internal/breaker) that the
// exchange asks before each request and tells the outcome of each attempt.

// Fallback is what callers of an isolated service get, or of one whose
// breaker is open (x-tend fallback).
type Fallback struct {
	Status  int               // zero: 503
	Body    string            // zero: a line of tend's
	Headers map[string]string // Retry-After is added unless set
}

// Breaker configures a service's request breaker (x-tend breaker); the
// zero value takes the defaults, Off turns it off.
type Breaker struct {
	Off         bool
	ErrorRatio  float64
	MinRequests int
	Window      time.Duration
	Latency     time.Duration
	Open        time.Duration
}

// Kinds of Event from the breaker.
const (
	EventBreakerOpen  = "breaker-open"
	EventBreakerClose = "breaker-close"
)

// canned is a fallback answer rendered once, for every driver.
type canned struct {
	code   int
	header [][2]string // canonical names
	body   []byte
	wire   []byte // the HTTP/1.1 head without Connection and the final blank line, for the loops
}

func renderFallback(f Fallback, service string, retryAfter time.Duration) *canned {
	c := &canned{code: f.Status, body: []byte(f.Body)}
	if c.code == 0 {
		c.code = http.StatusServiceUnavailable
	}
	if f.Body == "" {
		c.body = []byte("tend: " + service + " is isolated; try again later\n")
	}
	hs := map[string]string{}
	for k, v := range f.Headers {
		hs[http.CanonicalHeaderKey(k)] = v
	}
	if _, ok := hs["Content-Type"]; !ok {
		hs["Content-Type"] = "text/plain; charset=utf-8"
	}
	if _, ok := hs["Retry-After"]; !ok && c.code == http.StatusServiceUnavailable {
		hs["Retry-After"] = strconv.Itoa(int(max(1, (retryAfter+time.Second-1)/time.Second)))
	}
	hs["X-Tend-Fallback"] = service
	for _, k := range slices.Sorted(maps.Keys(hs)) {
		c.header = append(c.header, [2]string{http.CanonicalHeaderKey(k), hs[k]})
	}
	c.wire = fmt.Appendf(nil, "HTTP/1.1 %d %s\r\n", c.code, fasthttp.StatusMessage(c.code))
	for _, h := range c.header {
		c.wire = fmt.Appendf(c.wire, "%s: %s\r\n", h[0], h[1])
	}
	c.wire = fmt.Appendf(c.wire, "Content-Length: %d\r\n", len(c.body))
	return c
}

// appendCanned writes c for a loop's client.
func appendCanned(dst []byte, c *canned, close bool) []byte {
	dst = append(dst, c.wire...)
	if close {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, c.body...)
}

// fill writes c into a fasthttp response.
func (c *canned) fill(resp *fasthttp.Response) {
	resp.Reset()
	resp.SetStatusCode(c.code)
	for _, h := range c.header {
		resp.Header.Set(h[0], h[1])
	}
	resp.SetBodyRaw(c.body)
}

// write writes c on a net/http response.
func (c *canned) fillStd(w http.ResponseWriter) {
	hd := w.Header()
	for _, h := range c.header {
		hd.Set(h[0], h[1])
	}
	hd.Set("Content-Length", strconv.Itoa(len(c.body)))
	w.WriteHeader(c.code)
	w.Write(c.body)
}

// guard is a service's request breaker and its fallback, shared by the
// service's routes.
type guard struct {
	mu       sync.Mutex
	cfg      Breaker
	b        *breaker.Breaker // nil: off
	fallback *canned          // the answer while open
}

// configure applies a route's breaker settings; a change starts afresh.
func (g *guard) configure(cfg Breaker, f Fallback, service string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	open := cfg.Open
	if open <= 0 {
		open = 5 * time.Second
	}
	g.fallback = renderFallback(f, service, open)
	if g.b != nil && g.cfg == cfg || cfg.Off && g.b == nil {
		return // the same settings: the breaker keeps its state
	}
	g.cfg = cfg
	g.b = nil
	if !cfg.Off {
		g.b = breaker.New(breaker.Config{ErrorRatio: cfg.ErrorRatio, MinRequests: cfg.MinRequests, Window: cfg.Window,
			Latency: cfg.Latency, Open: cfg.Open})
	}
}

// allow asks the breaker about a request at now: nil to send it, or the
// answer to give instead.
func (g *guard) allow(now int64) (breaker.Ticket, *canned, breaker.Transition) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.b == nil {
		return breaker.Ticket{}, nil, breaker.Transition{}
	}
	t, ok, tr := g.b.Allow(now)
	if !ok {
		return t, g.fallback, tr
	}
	return t, nil, tr
}

func (g *guard) record(now int64, t breaker.Ticket, failed bool, took time.Duration) breaker.Transition {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.b == nil {
		return breaker.Transition{}
	}
	return g.b.Record(now, t, failed, took)
}

func (g *guard) abandon(now int64, t breaker.Ticket) breaker.Transition {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.b == nil {
		return breaker.Transition{}
	}
	return g.b.Abandon(now, t)
}

// report hands a breaker transition to Config.OnEvent.
func (p *pool) report(tr breaker.Transition) {
	if tr.Reason == "" {
		return
	}
	kind := EventBreakerOpen
	if tr.To == breaker.Closed {
		kind = EventBreakerClose
	}
	p.emit(Event{Kind: kind, Project: p.project, Service: p.service, Reason: tr.Reason, Message: tr.Message, Time: p.clk.Now()})
}

// shut is the answer a request gets at once, without a backend: the
// fallback of an isolated route; nil otherwise.
func (p *pool) shut() *canned { return p.isolated.Load() }

// isolate marks the pool isolated (r.Isolated) or not, and configures the
// service's breaker.
func (p *pool) isolate(r Route) {
	if r.Isolated {
		p.isolated.Store(renderFallback(r.Fallback, r.Service, r.RetryAfter))
		p.mu.Lock()
		p.rebuild() // wakes the requests waiting for a replica: they get the fallback now
		p.mu.Unlock()
	} else {
		p.isolated.Store(nil)
	}
	if p.requests {
		p.svc.guard.configure(r.Breaker, r.Fallback, r.Service)
	}
}

// refuse ends a connection to an isolated route at once: on an Auto port a
// client that speaks HTTP is served (and gets the fallback); any other is
// closed. A port whose backends have spoken first closes a silent client
// at once; on any other the client is given sniffPatience to speak: no
// backend waits for it, and an HTTP client slow to send its request (a
// loaded host: CI, 2026-12-07 23:01 UTC, after 50 ms) must get the
// fallback, not a closed connection.
func (t *tcpRoute) refuse(c net.Conn) {
	if t.http != nil {
		patience := sniffPatience
		if t.serverFirst.Load() > 0 {
			patience = 0
		}
		w := watchFirst(c, true)
		var v clientVerdict
		select {
		case v = <-w.done:
		case <-t.pool.clk.After(patience):
		}
		w.finish()
		if v.v == sniffHTTP && !v.gone {
			t.toHTTP(c)
			return
		}
	}
	t.pool.svc.none.record(t.pool.now(), 0, 0, false)
	t.closeClient(c)
}

// isolationCollector reports, per service, tend_proxy_isolated (1 while
// its routes are isolated by a quarantine) and tend_proxy_breaker_state
// (0 closed, 1 open, 2 half-open).
type isolationCollector struct {
	m                  *Manager
	isolated, breakers *prometheus.Desc
}

func (m *Manager) registerIsolation() {
	reg, ok := m.metrics.gatherer.(prometheus.Registerer)
	if m.cfg.Registry != nil {
		reg, ok = m.cfg.Registry, true
	}
	if !ok {
		return
	}
	register(reg, m.log, prometheus.Collector(&isolationCollector{m: m,
		isolated: prometheus.NewDesc("tend_proxy_isolated", "1 while the service is quarantined: its callers get the fallback at once.",
			[]string{"project", "service"}, nil),
		breakers: prometheus.NewDesc("tend_proxy_breaker_state", "The service's request breaker: 0 closed, 1 open, 2 half-open.",
			[]string{"project", "service"}, nil)}))
}

func (c *isolationCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.isolated; ch <- c.breakers }

func (c *isolationCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	isolated := map[*service]bool{}
	for _, rt := range c.m.routes {
		isolated[rt.pool.svc] = isolated[rt.pool.svc] || rt.pool.isolated.Load() != nil
	}
	svcs := make([]*service, 0, len(c.m.services))
	for _, s := range c.m.services {
		svcs = append(svcs, s)
	}
	c.m.mu.Unlock()
	for _, s := range svcs {
		v := 0.0
		if isolated[s] {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.isolated, prometheus.GaugeValue, v, s.project, s.name)
		s.guard.mu.Lock()
		state := -1.0
		if s.guard.b != nil {
			state = float64(s.guard.b.State())
		}
		s.guard.mu.Unlock()
		if state >= 0 {
			ch <- prometheus.MustNewConstMetric(c.breakers, prometheus.GaugeValue, state, s.project, s.name)
		}
	}
}
