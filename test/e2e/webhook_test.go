package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookPayload is the generic JSON of a webhook delivery (openapi.yaml, WebhookPayload).
type hookPayload struct {
	Version int            `json:"version"`
	Project string         `json:"project"`
	Service string         `json:"service"`
	Count   int            `json:"count"`
	Actions map[string]int `json:"actions"`
	Entries []entry        `json:"entries"`
	Omitted int            `json:"omitted"`
}

// hookReceiver records deliveries by path; its first `down` requests get 503.
type hookReceiver struct {
	mu     sync.Mutex
	down   int
	calls  int
	bodies map[string][]string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.calls <= h.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.bodies[r.URL.Path] = append(h.bodies[r.URL.Path], string(b))
}

func (h *hookReceiver) got(path string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies[path]...)
}

// TestWebhookGroupsACrashLoop: a crash loop on the real engine reaches a
// webhook that was down at first as a few grouped deliveries that together
// carry every restart the journal holds, and a Slack-format one; a third
// webhook that never answers slows none of it.
func TestWebhookGroupsACrashLoop(t *testing.T) {
	t.Parallel()
	recv := &hookReceiver{down: 2, bodies: map[string][]string{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	hang := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer stuck.Close()
	defer close(hang)

	cfg := filepath.Join(t.TempDir(), "tend.yaml")
	if err := os.WriteFile(cfg, []byte(`
webhooks:
  - url: `+srv.URL+`/json
    services: [flaky]
  - url: `+srv.URL+`/slack
    format: slack
    actions: [restart, quarantine]
webhook_grouping:
  wait: 1s
  interval: 4s
`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--config", cfg, "--webhook", stuck.URL+"/never")
	name, file := d.project(`
services:
  flaky:
    image: tend-demo:dev
    command: ["-exit-after", "10ms", "-exit-code", "3"]
    x-tend:
      backoff: {initial: 100ms, max: 400ms}
  steady:
    image: tend-demo:dev
`)
	start := time.Now()
	d.mustTend("up", "-f", file, "-p", name)
	var restarts int
	waitFor(t, 60*time.Second, "8 restarts of flaky", func() bool {
		restarts = 0
		for _, e := range d.events(name) {
			if e.Service == "flaky" && e.Action == "restart" {
				restarts++
			}
		}
		return restarts >= 8
	})
	healed := time.Since(start)
	if _, ok := findEvent(d.events(name), "steady", "create", ""); !ok {
		t.Error("steady was never created")
	}
	// The loop goes on (or is quarantined); wait until the deliveries catch up with the journal.
	var journaled, delivered, posts int
	waitFor(t, 60*time.Second, "every restart of flaky delivered", func() bool {
		journaled = 0
		for _, e := range d.events(name) {
			if e.Service == "flaky" && e.Action == "restart" {
				journaled++
			}
		}
		delivered, posts = 0, 0
		for _, b := range recv.got("/json") {
			var p hookPayload
			if err := json.Unmarshal([]byte(b), &p); err != nil {
				t.Fatalf("delivery is not JSON: %v\n%s", err, b)
			}
			if p.Version != 1 || p.Project != name || p.Service != "flaky" || p.Count != len(p.Entries)+p.Omitted {
				t.Fatalf("delivery %s", b)
			}
			delivered += p.Actions["restart"]
			posts++
		}
		return journaled >= 8 && delivered == journaled
	})
	if posts >= delivered/2 {
		t.Errorf("%d restarts took %d POSTs; want them grouped", delivered, posts)
	}
	slack := recv.got("/slack")
	if len(slack) == 0 || !strings.Contains(slack[0], `"text":"*tend* `+name+`/flaky: `) || !strings.Contains(slack[0], "restart") {
		t.Errorf("slack deliveries %q", slack)
	}
	t.Logf("%d restarts journaled in %s (the first 8), delivered in %d POSTs; the stuck webhook held its own goroutine only",
		journaled, healed, posts)
	if m := d.socketGet("/metrics"); !strings.Contains(m, `tend_webhook_deliveries_total{result="delivered",webhook="`+srv.URL+`/..."}`) ||
		!strings.Contains(m, `tend_webhook_deliveries_total{result="failed"`) {
		t.Errorf("webhook metrics missing:\n%s", m)
	}
	d.stop()
	if strings.Contains(d.log.String(), srv.URL+"/json") || strings.Contains(d.log.String(), "/never") {
		t.Errorf("the log names a webhook's path (their secret):\n%s", d.log.String())
	}
}
