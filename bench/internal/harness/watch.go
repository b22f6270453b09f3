package harness

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Span is a stretch of a run, as offsets from its start.
type Span struct{ From, To time.Duration }

// A Watcher asks each replica's address directly, many times a second, whether it
// answers, so a run that kills replicas can tell the failures no proxy could have
// avoided (no replica was answering) from those it could (one was).
type Watcher struct {
	start  time.Time
	period time.Duration
	mu     sync.Mutex
	ips    []string
	down   map[string][]Span // by address: when it did not answer
}

// NewWatcher watches GET http://IP:8080/health of each address, from start on.
func NewWatcher(ips []string, start time.Time, period time.Duration) *Watcher {
	return &Watcher{start: start, period: period, ips: ips, down: map[string][]Span{}}
}

// Run polls GET /health on each address every period (timeout 4 periods) until ctx
// ends, and returns when its pollers have. A replica killed and restarted by the engine
// can come back with another of the service's addresses; the watcher counts addresses
// answering, not containers.
func (w *Watcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ip := range w.ips {
		wg.Go(func() { w.poll(ctx, ip) })
	}
	wg.Wait()
}

func (w *Watcher) poll(ctx context.Context, ip string) {
	hc := &http.Client{Timeout: 4 * w.period, Transport: &http.Transport{DisableKeepAlives: true}}
	u := "http://" + ip + ":8080/health"
	for ctx.Err() == nil {
		t0 := time.Since(w.start)
		err := Send(ctx, hc, http.MethodGet, u)
		t1 := time.Since(w.start)
		if err != nil && ctx.Err() == nil {
			w.mu.Lock()
			ss := w.down[ip]
			if n := len(ss); n > 0 && ss[n-1].To >= t0-w.period {
				ss[n-1].To = t1 // still down: extend
			} else {
				ss = append(ss, Span{t0, t1})
			}
			w.down[ip] = ss
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(w.period):
		}
	}
}

// AllDown returns the spans in which no address answered.
func (w *Watcher) AllDown() []Span {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ips) == 0 {
		return nil
	}
	out := w.down[w.ips[0]]
	for _, ip := range w.ips[1:] {
		out = Intersect(out, w.down[ip])
	}
	return out
}

// Intersect returns the overlaps of two sorted lists of spans.
func Intersect(a, b []Span) []Span {
	var out []Span
	for i, j := 0, 0; i < len(a) && j < len(b); {
		from, to := max(a[i].From, b[j].From), min(a[i].To, b[j].To)
		if from < to {
			out = append(out, Span{from, to})
		}
		if a[i].To < b[j].To {
			i++
		} else {
			j++
		}
	}
	return out
}

// Total is the length of the spans together.
func Total(ss []Span) time.Duration {
	var d time.Duration
	for _, s := range ss {
		d += s.To - s.From
	}
	return d
}

// Overlaps reports whether s overlaps one of ss.
func Overlaps(ss []Span, s Span) bool {
	for _, d := range ss {
		if s.From < d.To && d.From < s.To {
			return true
		}
	}
	return false
}
