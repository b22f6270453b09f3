package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/notify"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
	"github.com/tend-sh/tend/internal/testwait"
)

// receiver is a webhook receiver that records what it was sent. While
// failing it answers 503; while hanging it holds each request until the test ends.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []notify.Payload
	bodies   []string
	attempts int
	failing  bool
	hangs    bool // hold every request until the test ends
	hang     chan struct{}
}

func newReceiver(t *testing.T) *receiver { return startReceiver(t, false) }

func startReceiver(t *testing.T, hangs bool) *receiver {
	r := &receiver{hang: make(chan struct{}), hangs: hangs}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() { close(r.hang); r.Server.Close() })
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.attempts++
	failing := r.failing
	r.mu.Unlock()
	if r.hangs {
		<-r.hang
		return
	}
	if failing {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p notify.Payload
	_ = json.Unmarshal(b, &p)
	r.mu.Lock()
	r.got, r.bodies = append(r.got, p), append(r.bodies, string(b))
	r.mu.Unlock()
}

func (r *receiver) setFailing(v bool) { r.mu.Lock(); r.failing = v; r.mu.Unlock() }

func (r *receiver) tries() int { r.mu.Lock(); defer r.mu.Unlock(); return r.attempts }

func (r *receiver) payloads() []notify.Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Payload(nil), r.got...)
}

// counted sums the entries of action over the payloads.
func counted(ps []notify.Payload, service, action string) int {
	n := 0
	for _, p := range ps {
		if p.Service == service {
			n += p.Actions[action]
		}
	}
	return n
}

func openStore(t *testing.T) *store.Bolt {
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "tend.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// leakCheck, called first, checks at the very end that the test left no goroutine.
func leakCheck(t *testing.T) {
	before := goruntime.NumGoroutine()
	t.Cleanup(func() { testwait.Goroutines(t, before) })
}

// run starts run until the test ends, then checks it returned nil.
func run(t *testing.T, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(testwait.For):
			t.Error("Run did not return")
		}
	})
}

var fast = notify.Config{
	Clock:    clock.Real{},
	Grouping: notify.Grouping{Wait: 200 * time.Millisecond, Interval: time.Second},
	Retry:    notify.Retry{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Window: 10 * time.Second},
	Timeout:  time.Second,
}

// TestCrashLoopIsGroupedAndHealingIsNotSlowed runs a crash loop on the fake
// runtime under a real supervisor with two webhooks, one that answers and one
// that hangs: the loop's restarts are delivered in a few grouped POSTs, none
// lost, and the hanging receiver slows neither the other one nor the restarts.
func TestCrashLoopIsGroupedAndHealingIsNotSlowed(t *testing.T) {
	leakCheck(t)
	st := openStore(t)
	rt := fake.New()
	sup := supervisor.New(supervisor.Config{Runtime: rt, Store: st, Clock: clock.Real{}})
	good, stuck := newReceiver(t), startReceiver(t, true)
	cfg := fast
	cfg.Store = st
	cfg.Webhooks = []notify.Webhook{{URL: good.URL, Actions: []string{"restart"}}, {URL: stuck.URL}}
	cfg.Timeout = time.Minute // the stuck receiver holds its goroutine for good
	run(t, sup.Run)
	run(t, notify.New(cfg).Run)

	// Two replicas, one of which crash-loops: the other stays ready, so the
	// service is not quarantined (a story of its own).
	svc := spec.Service{Name: "web", Image: "web:dev", Replicas: 2, Networks: []spec.NetworkAttach{{Network: "default"}},
		Restart: spec.RestartPolicy{Condition: spec.RestartAny},
		Tend:    spec.Extension{Backoff: spec.Backoff{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, ResetAfter: 10 * time.Second}}}
	p := spec.Project{Name: "demo", Services: []spec.Service{svc}, Networks: []spec.Network{{Key: "default", Name: "demo_default"}}}
	if _, err := sup.Up(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			es, _ := st.Journal(store.Query{})
			for _, e := range es {
				t.Logf("%+v", e)
			}
		}
	}()
	const crashes = 12
	start := time.Now()
	for i := range crashes {
		var id string
		testwait.Eventually(t, "web-1 running", func() bool {
			cs, _ := rt.List(t.Context(), "demo")
			for _, c := range cs {
				if c.Slot == 1 && c.State == runtime.Running {
					id = c.ID
					return true
				}
			}
			return false
		})
		if err := rt.Exit(id, 3); err != nil {
			t.Fatal(err)
		}
		testwait.Eventually(t, "the crash restarted", func() bool {
			es, _ := st.Journal(store.Query{Action: "restart"})
			return len(es) == i+1
		})
	}
	healing := time.Since(start)
	testwait.Eventually(t, "every restart delivered", func() bool { return counted(good.payloads(), "web", "restart") == crashes })
	ps := good.payloads()
	if len(ps) >= crashes/2 {
		t.Errorf("%d restarts took %d POSTs, want them grouped", crashes, len(ps))
	}
	for _, p := range ps {
		if p.Version != 1 || p.Project != "demo" || p.Count != len(p.Entries)+p.Omitted || len(p.Actions) != 1 {
			t.Errorf("payload %+v", p)
		}
	}
	if stuck.tries() == 0 {
		t.Error("the stuck receiver was never called")
	}
	t.Logf("%d crashes healed in %s, delivered in %d POSTs", crashes, healing, len(ps))
}

// TestReceiverDownLosesNothing: deliveries to a receiver that refuses
// connections, then answers 503, then comes back, all arrive, in order, once.
func TestReceiverDownLosesNothing(t *testing.T) {
	leakCheck(t)
	st := openStore(t)
	// A port that nobody listens on yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fast
	cfg.Store = st
	cfg.Webhooks = []notify.Webhook{{URL: "http://" + addr + "/hook"}}
	run(t, notify.New(cfg).Run)

	var storm []store.Entry // one transaction, so the grouping does not depend on the disk's speed
	for i := range 5 {
		storm = append(storm, store.Entry{Time: time.Now(), Project: "demo", Service: []string{"web", "api"}[i%2], Action: "restart", Reason: "exited"})
	}
	if _, err := st.Append(storm...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // down for a while: several attempts refused
	r := newReceiver(t)
	r.Server.Close()
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.setFailing(true)
	if r.Server.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	r.Server.Start()
	testwait.Eventually(t, "503s answered", func() bool { return r.tries() >= 2 })
	r.setFailing(false)
	testwait.Eventually(t, "all delivered", func() bool {
		return counted(r.payloads(), "web", "restart")+counted(r.payloads(), "api", "restart") == 5
	})
	ps := r.payloads()
	if len(ps) != 2 || ps[0].Service != "web" || ps[0].Count != 3 || ps[1].Service != "api" || ps[1].Count != 2 {
		t.Errorf("payloads %+v, want web's 3 then api's 2", ps)
	}
}

// TestQueueIsBounded: with the receiver down, the outbox keeps QueueSize
// payloads; the ones dropped are counted in the next delivery.
func TestQueueIsBounded(t *testing.T) {
	leakCheck(t)
	st := openStore(t)
	r := newReceiver(t)
	r.setFailing(true)
	cfg := fast
	cfg.Store = st
	cfg.QueueSize = 2
	cfg.Webhooks = []notify.Webhook{{URL: r.URL, Format: "slack"}}
	reg := prometheus.NewRegistry()
	cfg.Registry = reg
	run(t, notify.New(cfg).Run)
	var five []store.Entry
	for _, svc := range []string{"a", "b", "c", "d", "e"} {
		five = append(five, store.Entry{Time: time.Now(), Project: "demo", Service: svc, Action: "restart"})
	}
	if _, err := st.Append(five...); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, "attempts", func() bool { return r.tries() >= 3 })
	r.setFailing(false)
	testwait.Eventually(t, "deliveries", func() bool { return len(r.payloads()) >= 2 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) != 2 {
		t.Fatalf("bodies %q", r.bodies)
	}
	var first map[string]string
	if err := json.Unmarshal([]byte(r.bodies[0]), &first); err != nil || first["text"] == "" {
		t.Errorf("slack body %q: %v", r.bodies[0], err)
	}
	if !strings.Contains(first["text"], "(3 earlier notifications could not be delivered)") {
		t.Errorf("first delivery after 5 payloads in a queue of 2: %q, want 3 dropped counted", first["text"])
	}
	label := notify.Redact(r.URL)
	// got is a metric's value by its label values in the order of their names.
	got := func(name string, labels ...string) float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metric:
			for _, m := range mf.GetMetric() {
				for i, lp := range m.GetLabel() {
					if i >= len(labels) || lp.GetValue() != labels[i] {
						continue metric
					}
				}
				if m.Counter != nil {
					return m.Counter.GetValue()
				}
				return m.Gauge.GetValue()
			}
		}
		return -1
	}
	testwait.Eventually(t, "metrics", func() bool { return got("tend_webhook_queued", label) == 0 })
	if d, dr, f, e := got("tend_webhook_deliveries_total", "delivered", label), got("tend_webhook_deliveries_total", "dropped", label),
		got("tend_webhook_deliveries_total", "failed", label), got("tend_webhook_entries_total", label); d != 2 || dr != 3 || f < 1 || e != 2 {
		t.Errorf("metrics: delivered %v dropped %v failed %v entries %v; want 2, 3, >= 1, 2", d, dr, f, e)
	}
}

// TestRestartedDaemonGoesOn: a notifier stopped while its receiver is down
// leaves its place in the progress file; the next one (started, as the daemon
// does, at the journal's end) goes on from there: what was delivered is not
// sent again, what was not is.
func TestRestartedDaemonGoesOn(t *testing.T) {
	leakCheck(t)
	st := openStore(t)
	r := newReceiver(t)
	cfg := fast
	cfg.Store = st
	cfg.Progress = filepath.Join(t.TempDir(), "webhooks.json")
	cfg.Webhooks = []notify.Webhook{{URL: r.URL + "/secret-path"}}
	appendOne := func(svc string) {
		if _, err := st.Append(store.Entry{Time: time.Now(), Project: "demo", Service: svc, Action: "restart"}); err != nil {
			t.Fatal(err)
		}
	}
	first, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- notify.New(cfg).Run(first) }()
	appendOne("web")
	testwait.Eventually(t, "web delivered", func() bool { return len(r.payloads()) == 1 })
	r.setFailing(true)
	appendOne("api")
	testwait.Eventually(t, "api refused", func() bool { return r.tries() >= 3 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(cfg.Progress)
	if strings.Contains(string(b), "secret-path") {
		t.Errorf("the progress file names the webhook: %s", b)
	}

	r.setFailing(false)
	end, _ := st.Journal(store.Query{Limit: 1})
	cfg.After = end[0].Seq
	run(t, notify.New(cfg).Run)
	testwait.Eventually(t, "api delivered after the restart", func() bool { return counted(r.payloads(), "api", "restart") == 1 })
	if got := counted(r.payloads(), "web", "restart"); got != 1 {
		t.Errorf("web delivered %d times, want once", got)
	}
}
