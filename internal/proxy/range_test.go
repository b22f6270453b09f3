package proxy

import (
	"net"
	"net/netip"
	"testing"
)

// A host port range ("8000-8010:80") listens on its first free port.
func TestRangeListensOnItsFirstFreePort(t *testing.T) {
	h := newHarness(t, Config{})
	var taken net.Listener
	for taken == nil || mustAddrPort(taken.Addr()).Port() > 65000 { // room for a range above it
		var err error
		if taken, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
	}
	start := mustAddrPort(taken.Addr())
	r := Route{Project: "p", Service: "web", Listen: start, ListenEnd: start.Port() + 20,
		Backends: []Backend{backendServer(t, "web/1", named("web/1", nil))}}
	h.sync(r)
	h.sync(r) // the same route keeps its listener
	got, ok := h.m.Addr(r.Listen)
	if !ok || got.Port() <= start.Port() || got.Port() > r.ListenEnd {
		t.Fatalf("Addr = %s, %v; want a port in %d-%d after the taken one", got, ok, start.Port()+1, r.ListenEnd)
	}
	if code, body := h.get("http://" + got.String()); code != 200 || body != "web/1" {
		t.Fatalf("got %d %q", code, body)
	}
	var shown string
	for _, s := range h.m.Stats() {
		for _, p := range s.Ports {
			shown = p.Listen
		}
	}
	if want := netip.AddrPortFrom(start.Addr(), got.Port()).String(); shown != want {
		t.Errorf("stats show %q, want the bound %q", shown, want)
	}
}
