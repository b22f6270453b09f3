package proxy

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tend-sh/tend/internal/clock"
)

// The exchange's rules as stories: events in, decisions out, no sockets.
// Each step is an event at a time (ms since the request came) and the
// decision it must get; the ledger is the bookkeeping the story left: the
// statuses counted per replica (none: no replica could take the request),
// the failure streaks, the retries spent and what is still in flight.
//
// Events: start; woke; gone; answer CODE, stream CODE (a streamed head),
// finish, cut (a streamed answer's end, whole or not); refused, unsent,
// broken, late, bad (failures), with " reused" when the connection had
// served before; ready NAME and unready NAME change the pool. Decisions:
// send NAME [fresh], wait MS (until, from now), answer CODE, deliver, done;
// "-" for an event that returns none.
func TestExchangeStories(t *testing.T) {
	type step struct {
		at   int // ms
		ev   string
		want string
	}
	for _, tc := range []struct {
		name    string
		unready []string // of web/1, web/2
		method  string   // GET unless set
		stream  bool     // the body is not kept
		budget  int      // retries already spent (a quiet service may spend 30 in 10 s)
		steps   []step
		ledger  string
	}{
		{name: "success", steps: []step{
			{0, "start", "send web/1"},
			{3, "answer 200", "deliver"},
		}, ledger: "web/1 200x1"},
		{name: "refused, then another replica", method: "POST", steps: []step{
			{0, "start", "send web/1"},
			{1, "refused", "send web/2"},
			{2, "answer 201", "deliver"},
		}, ledger: "web/1 502x1 streak 1; web/2 201x1; retries 1"},
		{name: "refused everywhere: pauses within the hold, then 502", method: "POST", steps: []step{
			{0, "start", "send web/1"},
			{1, "refused", "send web/2"},
			{2, "refused", "wait 25"},
			{27, "woke", "send web/2"}, // all tried refused: any of them, afresh, in turn
			{28, "refused", "send web/1"},
			{29, "refused", "wait 25"},
			{40, "woke", "wait 14"}, // early (the pool changed): the pause goes on
			{1980, "woke", "send web/1"},
			{1981, "refused", "send web/2"},
			{1982, "refused", "answer 502"}, // no room for another pause
		}, ledger: "web/1 502x3 streak 3; web/2 502x3 streak 3; retries 5"},
		{name: "refused everywhere while the replicas go unready: 502 at the hold", steps: []step{
			{0, "start", "send web/1"},
			{1, "refused", "send web/2"},
			{2, "refused", "wait 25"},
			{10, "unready web/1", "-"},
			{10, "unready web/2", "-"},
			{27, "woke", "wait 1973"},
			{2000, "woke", "answer 502"},
		}, ledger: "web/1 502x1 streak 1; web/2 502x1 streak 1; retries 1"},
		{name: "a 503 to a GET is retried once", steps: []step{
			{0, "start", "send web/1"},
			{5, "answer 503", "send web/2"},
			{9, "answer 503", "deliver"},
		}, ledger: "web/1 503x1 streak 1; web/2 503x1 streak 1; retries 1"},
		{name: "a 502 to a POST stands", method: "POST", steps: []step{
			{0, "start", "send web/1"},
			{5, "answer 502", "deliver"},
		}, ledger: "web/1 502x1 streak 1"},
		{name: "a 503 with no other replica ready stands", unready: []string{"web/2"}, steps: []step{
			{0, "start", "send web/1"},
			{5, "answer 503", "deliver"},
		}, ledger: "web/1 503x1 streak 1"},
		{name: "a streamed 503 is retried, its answer dropped", steps: []step{
			{0, "start", "send web/1"},
			{5, "stream 503", "send web/2"},
			{7, "stream 200", "deliver"},
			{50, "finish", "-"},
		}, ledger: "web/1 503x1 streak 1; web/2 200x1; retries 1"},
		{name: "a streamed answer cut short", steps: []step{
			{0, "start", "send web/1"},
			{5, "stream 200", "deliver"},
			{50, "cut", "-"},
		}, ledger: "web/1 499x1"},
		{name: "a timeout is never retried", steps: []step{
			{0, "start", "send web/1"},
			{60000, "late", "answer 504"},
		}, ledger: "web/1 504x1 streak 1"},
		{name: "a broken connection: a GET goes elsewhere", steps: []step{
			{0, "start", "send web/1"},
			{1, "broken", "send web/2"},
			{2, "answer 200", "deliver"},
		}, ledger: "web/1 502x1 streak 1; web/2 200x1; retries 1"},
		{name: "a broken connection: a POST is not sent twice", method: "POST", steps: []step{
			{0, "start", "send web/1"},
			{1, "broken", "answer 502"},
		}, ledger: "web/1 502x1 streak 1"},
		{name: "a stale reused connection: sent again on a new one, to another replica", steps: []step{
			{0, "start", "send web/1"},
			{1, "broken reused", "send web/2 fresh"},
			{2, "answer 200", "deliver"},
		}, ledger: "web/2 200x1"},
		{name: "a stale reused connection with no other replica: the same one, fresh", unready: []string{"web/2"}, steps: []step{
			{0, "start", "send web/1"},
			{1, "unsent reused", "send web/1 fresh"},
			{2, "broken", "wait 1998"}, // a real failure now; a GET waits for another
			{2000, "woke", "answer 502"},
		}, ledger: "web/1 502x1 streak 1"},
		{name: "a POST unsent on a stale connection is resent; one broken after it was sent is not", method: "POST", steps: []step{
			{0, "start", "send web/1"},
			{1, "unsent reused", "send web/2 fresh"},
			{2, "broken reused", "answer 502"}, // a fresh connection is never stale
		}, ledger: "web/2 502x1 streak 1"},
		{name: "a streamed body goes on new connections and is never retried", stream: true, steps: []step{
			{0, "start", "send web/1 fresh"},
			{1, "refused", "answer 502"},
		}, ledger: "web/1 502x1 streak 1"},
		{name: "no ready replica: waits, one comes, sent", unready: []string{"web/1", "web/2"}, steps: []step{
			{0, "start", "wait 2000"},
			{300, "ready web/2", "-"},
			{300, "woke", "send web/2"},
			{301, "answer 200", "deliver"},
		}, ledger: "web/2 200x1"},
		{name: "no ready replica within the hold: 503", unready: []string{"web/1", "web/2"}, steps: []step{
			{0, "start", "wait 2000"},
			{700, "woke", "wait 1300"},
			{2000, "woke", "answer 503"},
		}, ledger: "none 503x1"},
		{name: "a retry waits for another replica within the hold", unready: []string{"web/2"}, steps: []step{
			{0, "start", "send web/1"},
			{1, "broken", "wait 1999"},
			{300, "ready web/2", "-"},
			{300, "woke", "send web/2"},
			{301, "answer 200", "deliver"},
		}, ledger: "web/1 502x1 streak 1; web/2 200x1; retries 1"},
		{name: "the client leaves during an attempt: no failure", steps: []step{
			{0, "start", "send web/1"},
			{500, "gone", "done"},
		}, ledger: "web/1 499x1"},
		{name: "the client leaves while the request waits", unready: []string{"web/1", "web/2"}, steps: []step{
			{0, "start", "wait 2000"},
			{100, "gone", "done"},
		}, ledger: ""},
		{name: "the client leaves during a streamed answer", steps: []step{
			{0, "start", "send web/1"},
			{5, "stream 200", "deliver"},
			{9, "gone", "done"},
		}, ledger: "web/1 499x1"},
		{name: "budget spent: no retry", budget: 30, steps: []step{
			{0, "start", "send web/1"},
			{5, "answer 503", "deliver"},
		}, ledger: "web/1 503x1 streak 1; retries 30"},
		{name: "budget spent: a refused connection is retried all the same", budget: 30, steps: []step{
			{0, "start", "send web/1"},
			{1, "refused", "send web/2"},
			{2, "answer 200", "deliver"},
		}, ledger: "web/1 502x1 streak 1; web/2 200x1; retries 31"},
		{name: "a bad answer on a reused connection is a failure, not stale", steps: []step{
			{0, "start", "send web/1"},
			{1, "bad reused", "send web/2"},
			{2, "answer 200", "deliver"},
		}, ledger: "web/1 502x1 streak 1; web/2 200x1; retries 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newStoryWorld(t, tc.unready...)
			base := int64(1000 * time.Second)
			for range tc.budget {
				w.p.svc.takeRetry(base, false)
			}
			x := newExchange(w.p, isIdempotent(cmpOr(tc.method, "GET"), nil), !tc.stream)
			now := base
			for i, s := range tc.steps {
				now = base + int64(s.at)*int64(time.Millisecond)
				got := w.event(&x, now, s.ev)
				if got != s.want {
					t.Fatalf("step %d (%d ms, %s): got %q, want %q", i, s.at, s.ev, got, s.want)
				}
			}
			if got := w.ledger(now); got != tc.ledger {
				t.Errorf("ledger:\n got %q\nwant %q", got, tc.ledger)
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// storyWorld is a pool of two replicas, web/1 and web/2, with a hold of
// 2 s, whose first pick is web/1.
type storyWorld struct {
	t   testing.TB
	p   *pool
	reg *prometheus.Registry
	bs  []Backend
}

func newStoryWorld(t testing.TB, unready ...string) *storyWorld {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, slog.New(slog.DiscardHandler), newInflightCollector(func(func(string, string, string, int64)) {}))
	p := newPool("p", "web", HTTP, newService("p", "web", m, newClk(clock.NewFake(time.Unix(0, 0)))),
		ejectPolicy{after: 5, base: 10 * time.Second, max: time.Minute}, nil, slog.New(slog.DiscardHandler), 2*time.Second, seeded(1))
	w := &storyWorld{t: t, p: p, reg: reg}
	for i, name := range []string{"web/1", "web/2"} {
		w.bs = append(w.bs, Backend{ID: name, Replica: name, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 80),
			Ready: !slices.Contains(unready, name)})
	}
	w.sync()
	p.turn.Store(^uint64(0)) // the first turn is web/1's
	return w
}

func (w *storyWorld) sync() { w.p.update(w.bs, func(string) bool { return false }) }

// event feeds one event to x and describes the decision.
func (w *storyWorld) event(x *exchange, now int64, ev string) string {
	w.t.Helper()
	verb, arg, _ := strings.Cut(ev, " ")
	reused := arg == "reused"
	var d decision
	switch verb {
	case "start":
		d = x.start(now)
	case "woke":
		d = x.woke(now)
	case "gone":
		d = x.clientGone(now)
	case "answer", "stream":
		var code int
		fmt.Sscan(arg, &code)
		d = x.answered(now, code, verb == "stream")
	case "finish", "cut":
		x.finished(now, verb == "finish")
		return "-"
	case "refused", "unsent", "broken", "late", "bad":
		k := map[string]kind{"refused": failedConnect, "unsent": failedWrite, "broken": failedBroken, "late": failedLate, "bad": failedBad}[verb]
		d = x.failed(now, k, reused)
	case "ready", "unready":
		for i := range w.bs {
			if w.bs[i].Replica == arg {
				w.bs[i].Ready = verb == "ready"
			}
		}
		w.sync()
		return "-"
	default:
		w.t.Fatalf("unknown event %q", ev)
	}
	switch d.step {
	case stepSend:
		if d.fresh {
			return "send " + d.b.replica + " fresh"
		}
		return "send " + d.b.replica
	case stepWait:
		return fmt.Sprintf("wait %d", (d.until-now)/int64(time.Millisecond))
	case stepAnswer:
		return fmt.Sprintf("answer %d", d.code)
	case stepDeliver:
		return "deliver"
	case stepDone:
		return "done"
	}
	return fmt.Sprintf("step %d", d.step)
}

// ledger describes the bookkeeping: statuses counted per replica, failure
// streaks, retries spent and requests still in flight.
func (w *storyWorld) ledger(now int64) string {
	w.t.Helper()
	counts := map[string][]string{}
	mfs, err := w.reg.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tend_proxy_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var replica, code string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "replica":
					replica = l.GetValue()
				case "code":
					code = l.GetValue()
				}
			}
			if replica == "" {
				replica = "none"
			}
			counts[replica] = append(counts[replica], fmt.Sprintf("%sx%d", code, int(m.GetCounter().GetValue())))
		}
	}
	var parts []string
	for _, name := range []string{"web/1", "web/2", "none"} {
		s := strings.Join(counts[name], " ")
		if b := backendByID(w.p, name); b != nil {
			if n := b.streak.Load(); n != 0 {
				s += fmt.Sprintf(" streak %d", n)
			}
			if n := b.inflight.Load(); n != 0 {
				s += fmt.Sprintf(" inflight %d", n)
			}
		}
		if s != "" {
			parts = append(parts, name+" "+strings.TrimSpace(s))
		}
	}
	if n := w.p.svc.retries.count(now); n != 0 {
		parts = append(parts, fmt.Sprintf("retries %d", n))
	}
	return strings.Join(parts, "; ")
}

// seeded is a deterministic randSource, safe for concurrent use.
func seeded(seed uint64) randSource {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed))}
}

type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// BenchmarkExchange is the machine's own cost for a request answered at
// once (start, answered), the bookkeeping included: what the loops pay for
// it per request. It must not allocate.
func BenchmarkExchange(b *testing.B) {
	w := newStoryWorld(b)
	now := int64(1000 * time.Second)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now += int64(time.Microsecond)
		x := newExchange(w.p, true, true)
		if d := x.start(now); d.step != stepSend {
			b.Fatal("no send")
		}
		if d := x.answered(now+int64(300*time.Microsecond), 200, false); d.step != stepDeliver {
			b.Fatal("no deliver")
		}
	}
}
