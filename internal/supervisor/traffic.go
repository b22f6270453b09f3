package supervisor

import (
	"context"
	"encoding/json"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// Traffic is the proxy on the published ports, as the supervisor drives it:
// proxy.Manager in the daemon. Each pass hands it the routes with the
// replicas' readiness; a replica is drained before tend stops it.
type Traffic interface {
	Sync(routes []proxy.Route) error
	Drain(ctx context.Context, id string)
	Stats() []proxy.ServiceStats
	Answered(id string) (ago time.Duration, ok bool)
	Hung(id string) bool
}

// routes are a project's published TCP ports, each over the service's running
// replicas, ready or not (the proxy sends new requests to ready ones only).
func routes(p *spec.Project, cs []runtime.Container, health map[string]reconcile.Health) []proxy.Route {
	var out []proxy.Route
	for i := range p.Services {
		svc := &p.Services[i]
		for _, port := range svc.Ports {
			if port.Protocol != "tcp" {
				continue // UDP is published by the engine
			}
			out = append(out, routeFor(p, svc, port, cs, health))
		}
	}
	return out
}

// routeFor is the route of one published port of svc over its running replicas.
func routeFor(p *spec.Project, svc *spec.Service, port spec.Port, cs []runtime.Container, health map[string]reconcile.Health) proxy.Route {
	return routeOver(p, svc, port, cs, health, nil)
}

// routeOver is routeFor with, in a cluster, the replicas other nodes run too,
// at the node's address and the port its engine published.
func routeOver(p *spec.Project, svc *spec.Service, port spec.Port, cs []runtime.Container, health map[string]reconcile.Health, remote []Replica) proxy.Route {
	r := proxy.Route{Project: p.Name, Service: svc.Name, Listen: listenAddr(port), ListenEnd: port.HostPortEnd, Mode: mode(svc, port),
		Idempotent: svc.Tend.Idempotent, Fallback: fallbackOf(svc), Breaker: breakerOf(svc)}
	for _, c := range cs {
		ip, err := netip.ParseAddr(c.IP)
		if c.Service != svc.Name || c.State != runtime.Running || err != nil {
			continue
		}
		r.Backends = append(r.Backends, proxy.Backend{ID: c.ID, Replica: svc.Name + "/" + strconv.Itoa(c.Slot),
			Addr: netip.AddrPortFrom(ip, port.ContainerPort), Ready: health[c.ID].Ready})
	}
	for _, rep := range remote {
		addr, ok := rep.Published[port.ContainerPort]
		if rep.Service != svc.Name || rep.State != string(runtime.Running) || !ok {
			continue
		}
		r.Backends = append(r.Backends, proxy.Backend{ID: rep.Node + "/" + rep.ID, Replica: svc.Name + "/" + strconv.Itoa(rep.Slot),
			Addr: addr, Ready: rep.Ready})
	}
	return r
}

// remote are, in a cluster, the replicas of project the other nodes run, as they reported them.
func (s *Supervisor) remote(project string) []Replica {
	pl := s.cfg.Placement
	if pl == nil {
		return nil
	}
	var out []Replica
	for node, b := range pl.Reports() {
		if node == pl.Node() {
			continue
		}
		var reps []Replica
		if json.Unmarshal(b, &reps) != nil {
			continue
		}
		for _, r := range reps {
			if r.Project == project && r.Node == node { // a slot it still runs, not one placed away since
				out = append(out, r)
			}
		}
	}
	return out
}

// allRoutes are a project's published routes and its in-stack ones.
func (s *Supervisor) allRoutes(ctx context.Context, p *spec.Project, cs []runtime.Container, health map[string]reconcile.Health) []proxy.Route {
	published := routes(p, cs, health)
	if remote := s.remote(p.Name); len(remote) > 0 {
		published = published[:0]
		for i := range p.Services {
			for _, port := range p.Services[i].Ports {
				if port.Protocol == "tcp" {
					published = append(published, routeOver(p, &p.Services[i], port, cs, health, remote))
				}
			}
		}
	}
	rs := append(published, inStackRoutes(p, inStackTargets(p, s.gatewaysOf(ctx, p), published), cs, health)...)
	s.shield(p.Name, rs) // quarantine.go
	s.markRecovering(p, cs, rs)
	return rs
}

// recoveringFor bounds how long after its start a replica that is not ready
// yet counts as a restart under way, for the proxy's longer hold.
const recoveringFor = 30 * time.Second

// markRecovering marks the routes of services with no ready replica and one
// on its way back: a slot with an action under way (a restart, a replica
// made anew), or a replica started within recoveringFor that is not ready
// yet. Their requests then wait for it (proxy.Route.Recovering) instead of
// failing after the usual 2 s hold when the engine is slow to start it.
func (s *Supervisor) markRecovering(p *spec.Project, cs []runtime.Container, rs []proxy.Route) {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	coming := map[string]bool{}
	for _, c := range cs {
		if c.State == runtime.Running && now.Sub(c.StartedAt) < recoveringFor || c.State == runtime.Created || c.State == runtime.Restarting {
			coming[c.Service] = true
		}
	}
	for id, busy := range s.busy { // by slotID: project/service/slot
		if svc, _, ok := strings.Cut(strings.TrimPrefix(id, p.Name+"/"), "/"); busy && ok && strings.HasPrefix(id, p.Name+"/") {
			coming[svc] = true
		}
	}
	for i := range rs {
		r := &rs[i]
		if r.Isolated || !coming[r.Service] {
			continue
		}
		r.Recovering = !slices.ContainsFunc(r.Backends, func(b proxy.Backend) bool { return b.Ready })
	}
}

// gatewaysOf are the known gateways of p's networks, by engine name.
func (s *Supervisor) gatewaysOf(ctx context.Context, p *spec.Project) map[string]string {
	out := map[string]string{}
	for _, n := range p.Networks {
		out[n.Name] = s.gateway(ctx, n.Name)
	}
	return out
}

func listenAddr(port spec.Port) netip.AddrPort {
	ip, err := netip.ParseAddr(port.HostIP)
	if err != nil {
		ip = netip.IPv4Unspecified()
	}
	return netip.AddrPortFrom(ip, port.HostPort)
}

// mode is HTTP where the port is declared HTTP (compose app_protocol) or a
// probe checks it over HTTP, TCP where app_protocol names anything else,
// and Auto (HTTP for the clients that speak it, TCP for the rest) where
// nothing is said, which is what almost every compose file says.
func mode(svc *spec.Service, port spec.Port) proxy.Mode {
	switch port.AppProtocol {
	case "http", "h2c":
		return proxy.HTTP
	case "":
	default:
		return proxy.TCP
	}
	for _, p := range []*spec.Probe{svc.Tend.Liveness, svc.Tend.Readiness} {
		if p != nil && p.HTTP != nil && p.HTTP.Port == port.ContainerPort {
			return proxy.HTTP
		}
	}
	return proxy.Auto
}

// syncTraffic hands the proxy every route, and journals a failure to bind once, not at every pass.
func (s *Supervisor) syncTraffic(rs []proxy.Route) {
	if s.cfg.Traffic == nil {
		return
	}
	err := s.cfg.Traffic.Sync(rs)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	s.mu.Lock()
	changed := msg != s.trafficErr
	s.trafficErr = msg
	s.mu.Unlock()
	if changed && err != nil {
		s.journal(store.Entry{Action: "publish", Reason: "proxy", Message: "a published port is not served", Error: msg})
	}
}

// drain takes a replica out of the proxy's rotation and waits, at most until
// ctx ends, for its requests in flight.
func (s *Supervisor) drain(ctx context.Context, id string) {
	if s.cfg.Traffic != nil {
		s.cfg.Traffic.Drain(ctx, id)
	}
}

// TrafficStats is what the proxy measured per service: rates, in-flight,
// latency percentiles (the autoscaler's input); nil without a proxy.
func (s *Supervisor) TrafficStats() []proxy.ServiceStats {
	if s.cfg.Traffic == nil {
		return nil
	}
	return s.cfg.Traffic.Stats()
}

// ProxyEvent journals what the proxy did on its own: a replica ejected for
// failing requests, or let back in.
func (s *Supervisor) ProxyEvent(e proxy.Event) {
	slot := 0
	if _, n, ok := strings.Cut(e.Replica, "/"); ok {
		slot, _ = strconv.Atoi(n)
	}
	reason := "outlier"
	if e.Reason != "" {
		reason = e.Reason // the request breaker's
	}
	entry := store.Entry{Time: e.Time, Project: e.Project, Service: e.Service, Slot: slot, Container: short(e.ID),
		Action: e.Kind, Reason: reason, Message: e.Message}
	if e.Reason == proxy.ReasonHung {
		if e.Kind == proxy.EventReadmit { // it answered: slow, not hung
			s.mu.Lock()
			delete(s.hung, e.ID)
			s.mu.Unlock()
		}
		s.retraffic()
		s.Poke() // the planner replaces it (health.go)
	}
	// The proxy calls from a request's path; the journal's disk write does not belong there.
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		s.journal(entry)
	}()
}

// seenProject is a project as the last pass saw it.
type seenProject struct {
	p  *spec.Project
	cs []runtime.Container
}

// remember keeps what a pass saw, for retraffic. Deleted projects are dropped.
func (s *Supervisor) remember(seen map[string]seenProject) {
	s.mu.Lock()
	s.seen = seen
	s.mu.Unlock()
}

// trafficGone takes a container that died out of the proxy's rotation at
// once, without waiting for the next pass.
func (s *Supervisor) trafficGone(id string) {
	s.mu.Lock()
	found := false
	for name, sp := range s.seen {
		for i, c := range sp.cs {
			if c.ID == id && c.State == runtime.Running {
				cs := slices.Clone(sp.cs)
				cs[i].State = runtime.Exited
				s.seen[name] = seenProject{p: sp.p, cs: cs}
				found = true
			}
		}
	}
	s.mu.Unlock()
	if found {
		s.retraffic()
	}
}

// retraffic hands the proxy the containers as the last pass saw them and
// the verdicts as they are now: at the end of every pass, and between
// passes when a probe verdict changes or a container dies.
// Retraffic hands the proxy the routes again from the last pass's view, with
// the other nodes' replicas as they now report them (in a cluster).
func (s *Supervisor) Retraffic() { s.retraffic() }

func (s *Supervisor) retraffic() {
	if s.cfg.Traffic == nil {
		return
	}
	s.trafficMu.Lock()
	defer s.trafficMu.Unlock()
	s.mu.Lock()
	seen := maps.Clone(s.seen)
	s.mu.Unlock()
	var rs []proxy.Route
	for _, name := range slices.Sorted(maps.Keys(seen)) {
		sp := seen[name]
		rs = append(rs, s.allRoutes(context.Background(), sp.p, sp.cs, s.verdicts(sp.p, sp.cs))...)
	}
	s.syncTraffic(rs)
}
