package main

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// A watcher asks each replica's address directly, many times a second, whether it
// answers, so an availability run can tell the failures no proxy could have avoided (no
// replica was answering) from those it could (one was).
type watcher struct {
	start  time.Time
	period time.Duration
	mu     sync.Mutex
	ips    []string
	down   map[string][]span // by address: when it did not answer
}

func newWatcher(ips []string, start time.Time, period time.Duration) *watcher {
	return &watcher{start: start, period: period, ips: ips, down: map[string][]span{}}
}

type span struct{ from, to time.Duration }

// run polls GET /health on each address every period (timeout 4 periods) until ctx
// ends, and returns when its pollers have. A replica killed and restarted by the engine
// can come back with another of the service's addresses; the watcher counts addresses
// answering, not containers.
func (w *watcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ip := range w.ips {
		wg.Go(func() { w.poll(ctx, ip) })
	}
	wg.Wait()
}

func (w *watcher) poll(ctx context.Context, ip string) {
	hc := &http.Client{Timeout: 4 * w.period, Transport: &http.Transport{DisableKeepAlives: true}}
	u := "http://" + ip + ":8080/health"
	for ctx.Err() == nil {
		t0 := time.Since(w.start)
		err := getDiscard(ctx, hc, u)
		t1 := time.Since(w.start)
		if err != nil && ctx.Err() == nil {
			w.mu.Lock()
			ss := w.down[ip]
			if n := len(ss); n > 0 && ss[n-1].to >= t0-w.period {
				ss[n-1].to = t1 // still down: extend
			} else {
				ss = append(ss, span{t0, t1})
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

// allDown returns the spans in which no address answered.
func (w *watcher) allDown() []span {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ips) == 0 {
		return nil
	}
	out := w.down[w.ips[0]]
	for _, ip := range w.ips[1:] {
		out = intersect(out, w.down[ip])
	}
	return out
}

// intersect returns the overlaps of two sorted lists of spans.
func intersect(a, b []span) []span {
	var out []span
	for i, j := 0, 0; i < len(a) && j < len(b); {
		from, to := max(a[i].from, b[j].from), min(a[i].to, b[j].to)
		if from < to {
			out = append(out, span{from, to})
		}
		if a[i].to < b[j].to {
			i++
		} else {
			j++
		}
	}
	return out
}

func total(ss []span) time.Duration {
	var d time.Duration
	for _, s := range ss {
		d += s.to - s.from
	}
	return d
}

// overlaps reports whether s overlaps one of ss.
func overlaps(ss []span, s span) bool {
	for _, d := range ss {
		if s.from < d.to && d.from < s.to {
			return true
		}
	}
	return false
}
