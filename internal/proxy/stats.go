package proxy

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Traffic is what a service or replica served over the last 10 seconds.
// Counts are of attempts: a retried request counts once per replica tried.
// In TCP mode a connection counts as a request and carries no latency.
type Traffic struct {
	Rate     float64 // requests (TCP: connections) per second
	InFlight int64   // requests or connections in flight now
	// Latency percentiles, from picking a replica to the end of the
	// response, within 12.5 %; zero without HTTP requests.
	P50, P95, P99 time.Duration
	Codes         map[string]uint64 // responses by status class, "2xx" to "5xx"; nil when none
}

// recentSpan is the seconds ServiceStats.Recent covers, the current one included.
const recentSpan = 3

// ServiceStats is the traffic of one service over all its published ports.
type ServiceStats struct {
	Project string
	Service string
	Traffic // the whole service, requests no replica could take included
	// Recent is the whole service over the last recentSpan seconds only:
	// the autoscaler's input, which must see a change within seconds.
	Recent   Traffic        `json:",omitzero"`
	Replicas []ReplicaStats // sorted by replica name
	Ports    []PortStats    // sorted by address
}

// PortStats is one listener of a service and the mode it runs in.
type PortStats struct {
	Listen string // as bound: "127.0.0.1:8080", or ":8080" for every address
	Mode   Mode
	// Connections since the listener opened, of an Auto port by the mode
	// their first bytes chose (HTTP ports count none, TCP ports TCP).
	HTTPConns, TCPConns uint64
}

// ReplicaStats is the traffic and standing of one replica.
type ReplicaStats struct {
	Replica  string // "web/2"
	ID       string // the container ID currently behind the replica; empty if none
	Ready    bool   // as last given to Sync
	Ejected  bool   // out of rotation for failing, for now
	Draining bool   // taken out of rotation by Drain
	Traffic
}

// service holds the statistics and metric children of one project/service,
// shared by its routes.
type service struct {
	project, name string
	m             *metrics
	clk           *clk
	win           window
	retries       retryRing
	retried       prometheus.Counter
	none          *replicaStats // requests that found no ready replica
	guard         guard         // the request breaker (isolation.go)

	mu       sync.Mutex
	replicas map[string]*replicaStats
}

func newService(project, name string, m *metrics, clk *clk) *service {
	s := &service{project: project, name: name, m: m, clk: clk, replicas: make(map[string]*replicaStats)}
	s.win.created = clk.mono()
	s.retried = m.retries.WithLabelValues(project, name)
	s.none = s.newReplica("")
	return s
}

// replicaStats is one replica's share: its window, in-flight count and the
// metric children its requests update.
type replicaStats struct {
	svc       *service
	name      string
	win       window
	inflight  atomic.Int64
	dur       prometheus.Observer
	codes     codeCounters
	tcp       prometheus.Counter
	ejections prometheus.Counter
}

func (s *service) newReplica(name string) *replicaStats {
	r := &replicaStats{svc: s, name: name}
	r.win.created = s.clk.mono()
	r.dur = s.m.duration.WithLabelValues(s.project, s.name, name)
	r.codes.vec = s.m.requests.MustCurryWith(prometheus.Labels{"project": s.project, "service": s.name, "replica": name})
	r.tcp = s.m.tcpConns.WithLabelValues(s.project, s.name, name)
	r.ejections = s.m.ejections.WithLabelValues(s.project, s.name, name)
	return r
}

// replica returns the statistics of the named replica, made on first use.
func (s *service) replica(name string) *replicaStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.replicas[name]
	if r == nil {
		r = s.newReplica(name)
		s.replicas[name] = r
	}
	return r
}

// keepReplicas forgets the replicas not named in keep.
func (s *service) keepReplicas(keep map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.replicas {
		if !keep[name] {
			delete(s.replicas, name)
		}
	}
}

// record counts one request or connection that ended now with code (0:
// none), lasting d when timed.
func (r *replicaStats) record(now int64, code int, d time.Duration, timed bool) {
	if timed {
		r.dur.Observe(d.Seconds())
	}
	if code != 0 {
		r.codes.inc(code)
	}
	r.win.add(now, code, d, timed)
	r.svc.win.add(now, code, d, timed) // last: once Stats shows it, so do the metrics
}

// Stats reports the traffic of every service with a route, over the last
// 10 seconds; for `tend ps` and the autoscaler.
func (m *Manager) Stats() []ServiceStats {
	now := m.clk.mono()
	m.mu.Lock()
	standings := make(map[*service]map[string]ReplicaStats, len(m.services))
	ports := make(map[*service][]PortStats, len(m.services))
	for _, rt := range m.routes {
		ps := PortStats{Listen: rt.bound(), Mode: rt.spec.Mode}
		if rt.tcp != nil {
			ps.HTTPConns, ps.TCPConns = rt.tcp.servedHTTP.Load(), rt.tcp.servedTCP.Load()
		}
		ports[rt.pool.svc] = append(ports[rt.pool.svc], ps)
		st := standings[rt.pool.svc]
		if st == nil {
			st = make(map[string]ReplicaStats)
			standings[rt.pool.svc] = st
		}
		rt.pool.standings(st)
	}
	out := make([]ServiceStats, 0, len(m.services))
	for _, svc := range m.services {
		ss := svc.stats(now, standings[svc])
		ss.Ports = ports[svc]
		slices.SortFunc(ss.Ports, func(a, b PortStats) int { return cmp.Compare(a.Listen, b.Listen) })
		out = append(out, ss)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b ServiceStats) int {
		return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Service, b.Service))
	})
	return out
}

// standings adds the standing of the pool's backends to st, by replica: a
// replica behind several ports is ready if it is on any, and ejected or
// draining if it is on any.
func (p *pool) standings(st map[string]ReplicaStats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.all {
		s := st[b.replica]
		s.ID = b.id
		s.Ready = s.Ready || b.ready
		s.Ejected = s.Ejected || b.out.until != 0
		s.Draining = s.Draining || b.draining
		st[b.replica] = s
	}
}

// stats is the service's traffic at now, with its replicas' standings.
func (s *service) stats(now int64, standings map[string]ReplicaStats) ServiceStats {
	ss := ServiceStats{Project: s.project, Service: s.name}
	var inflight int64
	s.mu.Lock()
	for name, r := range s.replicas {
		var snap snapshot
		r.win.read(now, &snap)
		n := r.inflight.Load()
		inflight += n
		rs := standings[name]
		rs.Replica, rs.Traffic = name, snap.traffic(n)
		ss.Replicas = append(ss.Replicas, rs)
	}
	s.mu.Unlock()
	var all snapshot
	s.win.read(now, &all)
	ss.Traffic = all.traffic(inflight)
	var recent snapshot
	s.win.readSpan(now, recentSpan, &recent)
	ss.Recent = recent.traffic(inflight)
	slices.SortFunc(ss.Replicas, func(a, b ReplicaStats) int { return cmp.Compare(a.Replica, b.Replica) })
	return ss
}

// eachInflight feeds the in-flight gauge: every replica of every service.
func (m *Manager) eachInflight(f func(project, service, replica string, n int64)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, svc := range m.services {
		svc.mu.Lock()
		for name, r := range svc.replicas {
			f(svc.project, svc.name, name, r.inflight.Load())
		}
		svc.mu.Unlock()
	}
}
