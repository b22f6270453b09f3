package supervisor

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/runtime/fake"

	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

func trafficProject() *spec.Project {
	httpProbe := &spec.Probe{HTTP: &spec.HTTPCheck{Port: 8080, Path: "/health"}}
	return &spec.Project{Name: "shop",
		Networks: []spec.Network{{Key: "back", Name: "shop_back"}, {Key: "default", Name: "shop_default"}},
		Services: []spec.Service{
			{Name: "api", Ports: []spec.Port{{HostIP: "127.0.0.1", HostPort: 18080, ContainerPort: 8080, Protocol: "tcp"}},
				Networks: []spec.NetworkAttach{{Network: "default"}}, Tend: spec.Extension{Readiness: httpProbe, Idempotent: []string{"PUT"}}},
			{Name: "db", Ports: []spec.Port{{HostPort: 5432, ContainerPort: 5432, Protocol: "tcp", AppProtocol: "postgresql"}},
				Networks: []spec.NetworkAttach{{Network: "back"}}},
			{Name: "dns", Ports: []spec.Port{{HostPort: 5353, ContainerPort: 53, Protocol: "udp"}},
				Networks: []spec.NetworkAttach{{Network: "default"}}},
			{Name: "web", Ports: []spec.Port{{HostIP: "127.0.0.1", HostPort: 18081, ContainerPort: 8080, Protocol: "tcp", AppProtocol: "http"}},
				Networks: []spec.NetworkAttach{{Network: "default"}, {Network: "back"}}},
			{Name: "worker", Networks: []spec.NetworkAttach{{Network: "default"}, {Network: "back"}}},
		}}
}

func TestRoutesPublishTCPPortsOverRunningReplicas(t *testing.T) {
	p := trafficProject()
	cs := []runtime.Container{
		{ID: "a1", Service: "api", Slot: 1, State: runtime.Running, IP: "172.18.0.2"},
		{ID: "a2", Service: "api", Slot: 2, State: runtime.Running, IP: "172.18.0.3"},
		{ID: "a3", Service: "api", Slot: 3, State: runtime.Exited},
	}
	health := map[string]reconcile.Health{"a1": {Ready: true}}
	rs := routes(p, cs, health)
	if len(rs) != 3 {
		t.Fatalf("routes: %d, want api, db and web (udp is the engine's): %+v", len(rs), rs)
	}
	api := rs[0]
	if api.Listen != netip.MustParseAddrPort("127.0.0.1:18080") || api.Mode != proxy.HTTP {
		t.Errorf("api route: %v %v, want 127.0.0.1:18080 in HTTP mode (its readiness probe is HTTP on 8080)", api.Listen, api.Mode)
	}
	if !slices.Equal(api.Idempotent, []string{"PUT"}) {
		t.Errorf("api route's idempotent methods: %v, want x-tend's [PUT]", api.Idempotent)
	}
	want := []proxy.Backend{
		{ID: "a1", Replica: "api/1", Addr: netip.MustParseAddrPort("172.18.0.2:8080"), Ready: true},
		{ID: "a2", Replica: "api/2", Addr: netip.MustParseAddrPort("172.18.0.3:8080"), Ready: false},
	}
	if !slices.Equal(api.Backends, want) {
		t.Errorf("api backends:\n got %+v\nwant %+v", api.Backends, want)
	}
	if db := rs[1]; db.Mode != proxy.TCP || db.Listen != netip.AddrPortFrom(netip.IPv4Unspecified(), 5432) {
		t.Errorf("db route: %v %v, want every address in TCP mode (app_protocol names another protocol)", db.Listen, db.Mode)
	}
	p.Services[1].Ports[0].AppProtocol = ""
	if db := routes(p, cs, health)[1]; db.Mode != proxy.Auto {
		t.Errorf("db route with nothing declared: %v, want auto (HTTP told from TCP by the first bytes)", db.Mode)
	}
	if web := rs[2]; web.Mode != proxy.HTTP {
		t.Errorf("web route: %v, want HTTP (app_protocol)", web.Mode)
	}
}

func TestInStack(t *testing.T) {
	p := trafficProject()
	gateways := map[string]string{"shop_default": "172.18.0.1", "shop_back": "172.19.0.1"}
	targets := inStackTargets(p, gateways, routes(p, nil, nil))
	var got []string
	for _, tg := range targets {
		got = append(got, tg.svc.Name+"@"+tg.listen.String())
	}
	// db publishes 5432 on every address: that port is taken on the gateways too.
	want := []string{"api@172.18.0.1:8080", "web@172.18.0.1:8080", "web@172.19.0.1:8080"}
	if !slices.Equal(got, want) {
		t.Fatalf("in-stack targets:\n got %v\nwant %v", got, want)
	}
	rs := inStackRoutes(p, targets, nil, nil)
	if !slices.Equal(rs[0].Hosts, []string{"api"}) || rs[0].Mode != proxy.HTTP {
		t.Errorf("in-stack api route: %+v, want HTTP behind the Host api", rs[0])
	}

	worker, _ := p.Service("worker")
	hosts := inStackHosts(p, worker, targets)
	wantHosts := []spec.ExtraHost{{Host: "api", IP: "172.18.0.1"}, {Host: "web", IP: "172.18.0.1"}}
	if !slices.Equal(hosts, wantHosts) {
		t.Errorf("worker's hosts:\n got %v\nwant %v", hosts, wantHosts)
	}
	worker.ExtraHosts = []spec.ExtraHost{{Host: "api", IP: "10.0.0.9"}}
	if hosts := inStackHosts(p, worker, targets); !slices.Equal(hosts, wantHosts[1:]) {
		t.Errorf("the user's own extra_hosts entry must win: %v", hosts)
	}
	if hosts := inStackHosts(p, worker, inStackTargets(p, map[string]string{}, nil)); len(hosts) != 0 {
		t.Errorf("no gateway known: hosts %v, want none", hosts)
	}
}

func TestReadinessProbe(t *testing.T) {
	p := trafficProject()
	api, _ := p.Service("api")
	if readinessProbe(api) != api.Tend.Readiness {
		t.Error("api: want its own readiness probe")
	}
	db, _ := p.Service("db")
	if rp := readinessProbe(db); rp == nil || rp.TCP == nil || rp.TCP.Port != 5432 {
		t.Errorf("db publishes a TCP port and has no check: want a TCP probe of 5432, got %+v", rp)
	}
	db.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "/db", "-check"}}
	if rp := readinessProbe(db); rp != nil {
		t.Errorf("db with a healthcheck: want the engine's verdict, got %+v", rp)
	}
	worker, _ := p.Service("worker")
	if rp := readinessProbe(worker); rp != nil {
		t.Errorf("worker has no ports and no check: want none, got %+v", rp)
	}
}

// A service with no ready replica and one on its way back gets the proxy's
// longer hold (issue 20): its requests wait out a slow engine's start.
func TestMarkRecovering(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	p := trafficProject()
	tests := []struct {
		name string
		c    runtime.Container // api's only replica
		busy bool              // an action under way on api/1
		want bool
	}{
		{name: "restart under way", c: runtime.Container{State: runtime.Exited}, busy: true, want: true},
		{name: "started, not ready yet", c: runtime.Container{State: runtime.Running, StartedAt: now.Add(-3 * time.Second)}, want: true},
		{name: "ready", c: runtime.Container{State: runtime.Running, StartedAt: now.Add(-3 * time.Second), IP: "172.18.0.2"}, want: false},
		{name: "exited, waiting out a backoff", c: runtime.Container{State: runtime.Exited}, want: false},
		{name: "running long, never ready", c: runtime.Container{State: runtime.Running, StartedAt: now.Add(-time.Minute)}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{Runtime: fake.New(), Store: nil, Clock: clock.NewFake(now)})
			if tt.busy {
				s.busy[slotID(p.Name, "api", 1)] = true
			}
			c := tt.c
			c.ID, c.Service, c.Slot = "a1", "api", 1
			if c.IP == "" && c.State == runtime.Running {
				c.IP = "172.18.0.9"
			}
			health := map[string]reconcile.Health{}
			if tt.name == "ready" {
				health["a1"] = reconcile.Health{Ready: true}
			}
			rs := routes(p, []runtime.Container{c}, health)
			s.markRecovering(p, []runtime.Container{c}, rs)
			if rs[0].Service != "api" || rs[0].Recovering != tt.want {
				t.Errorf("api route recovering %v, want %v", rs[0].Recovering, tt.want)
			}
			if rs[2].Recovering {
				t.Error("web, with nothing under way, is marked recovering")
			}
		})
	}
}

// A replica sent a signal that ends a process leaves the rotation at once;
// one sent HUP or USR1 (a reload, for many servers) stays in it until its
// die event, if any.
func TestOnlyEndingSignalsTakeAReplicaOutOfRotation(t *testing.T) {
	for _, tc := range []struct {
		action string
		signal int
		want   bool
	}{
		{"die", 0, true}, {"destroy", 0, true},
		{"kill", 9, true}, {"kill", 15, true}, {"kill", 2, true}, {"kill", 3, true}, {"kill", 0, true},
		{"kill", 1, false}, {"kill", 10, false}, {"kill", 12, false}, {"kill", 28, false},
		{"start", 0, false}, {"stop", 0, false},
	} {
		if got := endsTraffic(runtime.Event{Action: tc.action, Signal: tc.signal}); got != tc.want {
			t.Errorf("%s signal %d: ends traffic %v, want %v", tc.action, tc.signal, got, tc.want)
		}
	}
}
