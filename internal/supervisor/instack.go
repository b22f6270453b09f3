package supervisor

import (
	"context"
	"net/netip"
	"slices"

	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// Calls inside a stack go through tend's proxy too: a service that publishes
// a TCP port is also served on each of its networks' gateways (the host's
// address on that network) at its container port, and the other replicas'
// /etc/hosts point its name there. Several HTTP services on one port share
// the gateway's listener and are told apart by the Host header (the name
// the caller used); a TCP service needs its port to itself on that network.
// Readiness, ejection, retries and draining then apply to in-stack calls.
//
// Limits: only names set at a container's creation count (a service that
// gains ports later is reached directly by older replicas until they are
// replaced); an internal network has no gateway, so its calls go direct;
// and a port published on all host addresses (the compose default,
// "8080:8080") holds that port on every gateway too, so services on that
// container port are reached directly.

// gateway is the host's address on a network, asked of the engine once.
func (s *Supervisor) gateway(ctx context.Context, network string) string {
	s.mu.Lock()
	gw, ok := s.gateways[network]
	s.mu.Unlock()
	if ok {
		return gw
	}
	gw, err := s.cfg.Runtime.NetworkGateway(ctx, network)
	if err != nil {
		return "" // not there yet: asked again next time
	}
	s.mu.Lock()
	s.gateways[network] = gw
	s.mu.Unlock()
	return gw
}

// inStackTarget is one service port served on one network's gateway.
type inStackTarget struct {
	svc     *spec.Service
	port    spec.Port
	network string // the engine's name
	listen  netip.AddrPort
}

// inStackTargets lists where p's services are served in-stack, given the
// gateways known (by network engine name) and the published routes (whose
// ports they must not collide with).
func inStackTargets(p *spec.Project, gateways map[string]string, published []proxy.Route) []inStackTarget {
	taken := func(a netip.AddrPort) bool {
		for _, r := range published {
			if r.Listen.Port() == a.Port() && (!r.Listen.Addr().IsValid() || r.Listen.Addr().IsUnspecified() || r.Listen.Addr() == a.Addr()) {
				return true
			}
		}
		return false
	}
	var out []inStackTarget
	for i := range p.Services {
		svc := &p.Services[i]
		for _, port := range svc.Ports {
			if port.Protocol != "tcp" {
				continue
			}
			for _, na := range svc.Networks {
				name := p.NetworkName(na.Network)
				gw, err := netip.ParseAddr(gateways[name])
				if err != nil {
					continue
				}
				listen := netip.AddrPortFrom(gw, port.ContainerPort)
				if taken(listen) {
					continue
				}
				out = append(out, inStackTarget{svc: svc, port: port, network: name, listen: listen})
			}
		}
	}
	return out
}

// inStackRoutes are the routes of the targets, over the same replicas as
// the published ports.
func inStackRoutes(p *spec.Project, targets []inStackTarget, cs []runtime.Container, health map[string]reconcile.Health) []proxy.Route {
	var out []proxy.Route
	for _, t := range targets {
		r := routeFor(p, t.svc, t.port, cs, health)
		r.Listen = t.listen
		if r.Mode == proxy.HTTP {
			r.Hosts = []string{t.svc.Name}
		}
		out = append(out, r)
	}
	return out
}

// inStackHosts are the /etc/hosts entries a new replica of svc gets: each
// service served in-stack on a network svc shares, at that network's gateway.
func inStackHosts(p *spec.Project, svc *spec.Service, targets []inStackTarget) []spec.ExtraHost {
	var out []spec.ExtraHost
	for _, na := range svc.Networks {
		name := p.NetworkName(na.Network)
		for _, t := range targets {
			if t.network != name || slices.ContainsFunc(out, func(h spec.ExtraHost) bool { return h.Host == t.svc.Name }) {
				continue
			}
			if slices.ContainsFunc(svc.ExtraHosts, func(h spec.ExtraHost) bool { return h.Host == t.svc.Name }) {
				continue // the user's own entry wins
			}
			out = append(out, spec.ExtraHost{Host: t.svc.Name, IP: t.listen.Addr().String()})
		}
	}
	return out
}
