package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestIsolatedRouteAnswersAtOnce: a quarantined service's route answers
// HTTP with its fallback and closes TCP connections, on the fake clock
// without it moving: nobody is held.
func TestIsolatedRouteAnswersAtOnce(t *testing.T) {
	h := newFakeHarness(t, Config{})
	fb := Fallback{Status: 503, Body: "payments are down, try later", Headers: map[string]string{"content-type": "text/plain"}}
	for _, mode := range []Mode{HTTP, Auto} {
		t.Run(mode.String(), func(t *testing.T) {
			r := routeOf(t, "pay-"+mode.String(), mode)
			r.Isolated, r.Fallback, r.RetryAfter = true, fb, 25*time.Second
			h.sync(r)
			resp, body := h.send(mustRequest(t, url(r)))
			if resp.StatusCode != 503 || string(body) != fb.Body || resp.Header.Get("Retry-After") != "25" ||
				resp.Header.Get("Content-Type") != "text/plain" {
				t.Fatalf("got %d %q %v, want the fallback with Retry-After 25", resp.StatusCode, body, resp.Header)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `tend_proxy_isolated{project="p",service="pay-auto"} 1`) {
		t.Errorf("metrics lack tend_proxy_isolated 1 for pay-auto (the last synced):\n%s", rec.Body.String())
	}
	r := routeOf(t, "db", TCP)
	r.Isolated = true
	h.sync(r)
	c, err := net.Dial("tcp", r.Listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("TCP read = %d, %v; want EOF at once", n, err)
	}
}

// TestBreakerOpensAndAnswersFallback: a service answering 500s trips its
// breaker (journaled once); then callers get the fallback without a request
// reaching it.
func TestBreakerOpensAndAnswersFallback(t *testing.T) {
	h := newFakeHarness(t, Config{})
	var hits counter
	r := routeOf(t, "back", HTTP, backendServer(t, "back/1", failing(500, &hits)))
	r.Fallback = Fallback{Body: "back is resting"}
	h.sync(r)
	for range 20 {
		h.get(url(r))
	}
	if n := len(h.eventsOf(EventBreakerOpen)); n != 1 {
		t.Fatalf("%d breaker-open events, want 1", n)
	}
	before := hits.get()
	code, body := h.get(url(r))
	if code != 503 || body != "back is resting" || hits.get() != before {
		t.Fatalf("open: %d %q, %d requests reached it; want the fallback and none", code, body, hits.get()-before)
	}
	if ev := h.eventsOf(EventBreakerOpen)[0]; ev.Reason != "error-ratio" || ev.Service != "back" {
		t.Errorf("event %+v", ev)
	}
}

func mustRequest(t *testing.T, u string) *http.Request {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestIsolatedAutoPortWaitsForASlowClient: on an isolated Auto port, an
// HTTP client that sends its request a while after connecting (a loaded
// host) gets the fallback, not a closed connection; a silent one is closed
// within sniffPatience.
func TestIsolatedAutoPortWaitsForASlowClient(t *testing.T) {
	h := newHarness(t, Config{})
	r := routeOf(t, "pay", Auto)
	r.Isolated, r.Fallback = true, Fallback{Status: 503, Body: "down"}
	h.sync(r)
	h.get(url(r)) // a first HTTP client: the port's clients speak first
	c, err := net.Dial("tcp", r.Listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(300 * time.Millisecond) // well past clientFirstWait
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: pay\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(got), "HTTP/1.1 503") || !strings.HasSuffix(string(got), "down") {
		t.Fatalf("a slow client got %q, want the fallback", got)
	}

	silent, err := net.Dial("tcp", r.Listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a silent client: read %d, %v; want EOF", n, err)
	}
	if took := time.Since(start); took > sniffPatience+time.Second {
		t.Errorf("a silent client was held %s, want at most sniffPatience (%s)", took, sniffPatience)
	}
}
