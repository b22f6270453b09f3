package proxy

import (
	"io"
	"net"
	"net/http"
	"testing"
)

// hostGet sends a GET to the route's address with the given Host header.
func hostGet(t *testing.T, r Route, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url(r), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRoutesShareAnAddressByHost(t *testing.T) {
	h := newHarness(t, Config{Hold: -1})
	var apiHits, webHits counter
	api := routeOf(t, "api", HTTP, backendServer(t, "api/1", named("api/1", &apiHits)))
	web := api
	web.Service, web.Backends = "web", []Backend{backendServer(t, "web/1", named("web/1", &webHits))}
	api.Hosts, web.Hosts = []string{"api"}, []string{"web", "www"}
	h.sync(api, web)

	for _, c := range []struct{ host, want string }{{"api:8080", "api/1"}, {"web", "web/1"}, {"WWW", "web/1"}} {
		if code, body := hostGet(t, api, c.host); code != 200 || body != c.want {
			t.Errorf("Host %s: %d %q, want %s", c.host, code, body, c.want)
		}
	}
	if code, body := hostGet(t, api, "db"); code != 404 || body == "" {
		t.Errorf("unknown host: %d %q, want 404", code, body)
	}

	// One leaves: the other keeps the address.
	h.sync(web)
	if code, _ := hostGet(t, web, "api"); code != 404 {
		t.Errorf("api after it left: %d, want 404", code)
	}
	if code, body := hostGet(t, web, "web"); code != 200 || body != "web/1" {
		t.Errorf("web after api left: %d %q", code, body)
	}
	// Both gone: the port is free.
	h.sync()
	ln, err := net.Listen("tcp", web.Listen.String())
	if err != nil {
		t.Fatalf("the port is still bound after the last route left: %v", err)
	}
	ln.Close()
}

func TestHostRoutesAndAPlainRouteConflict(t *testing.T) {
	h := newHarness(t, Config{})
	plain := routeOf(t, "db", TCP, backendServer(t, "db/1", named("db/1", &counter{})))
	named := plain
	named.Service, named.Mode, named.Hosts = "api", HTTP, []string{"api"}
	if err := h.m.Sync([]Route{plain, named}); err == nil {
		t.Fatal("a host route on a plain route's address: no error")
	}
}
