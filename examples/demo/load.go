package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// loadShape is what GET / costs, to show the autoscaler both kinds of
// service: with -limit K and -work D a replica serves K requests at once,
// each holding its place for D, and the rest wait their turn (latency grows
// with load per replica, so more replicas help); -delay D adds D to every
// request whatever the load (more replicas do not help).
type loadShape struct {
	limit       int
	work, delay time.Duration
	slots       chan struct{}

	// The load mode's settings.
	url     string
	clients int
	span    time.Duration
}

// loadFlags registers the shape's flags (and their env defaults) on fs.
func loadFlags(fs *flag.FlagSet) *loadShape {
	l := &loadShape{}
	limit, _ := strconv.Atoi(envOr("DEMO_LIMIT", "0"))
	work, _ := time.ParseDuration(envOr("DEMO_WORK", "0s"))
	delay, _ := time.ParseDuration(envOr("DEMO_DELAY", "0s"))
	fs.IntVar(&l.limit, "limit", limit, "GET / serves this many requests at once, the rest wait (0: no limit; env DEMO_LIMIT)")
	fs.DurationVar(&l.work, "work", work, "GET / holds one of the -limit places this long (env DEMO_WORK)")
	fs.DurationVar(&l.delay, "delay", delay, "GET / waits this long more, whatever the load (env DEMO_DELAY)")
	fs.StringVar(&l.url, "load", "", "load mode: GET this URL from -clients clients for -for, printing each second's p95")
	fs.IntVar(&l.clients, "clients", 32, "load mode: clients, each sending its next request when the last is answered")
	fs.DurationVar(&l.span, "for", 30*time.Second, "load mode: how long")
	return l
}

// wrap puts h behind the shape; a nil or empty shape leaves it as it is.
func (l *loadShape) wrap(h http.Handler) http.Handler {
	if l == nil || (l.limit <= 0 && l.work <= 0 && l.delay <= 0) {
		return h
	}
	if l.limit > 0 && l.slots == nil {
		l.slots = make(chan struct{}, l.limit)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.slots != nil {
			select {
			case l.slots <- struct{}{}:
			case <-r.Context().Done():
				return
			}
		}
		pause(r, l.work)
		if l.slots != nil {
			<-l.slots
		}
		pause(r, l.delay)
		h.ServeHTTP(w, r)
	})
}

// pause waits d, or until the client goes.
func pause(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// drive is the demo's load mode (-load URL): clients send GET requests one
// after another for a while, and each second's count, failures and p95 are
// printed, to watch tend's autoscaler at work.
func drive(ctx context.Context, url string, clients int, span time.Duration, out io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, span)
	defer cancel()
	var mu sync.Mutex
	var lats []time.Duration
	failed := 0
	var firstFail, lastFail time.Time // this second's, to tell when requests failed
	firstErr := ""
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			hc := &http.Client{Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := hc.Do(req)
				if ctx.Err() != nil {
					return
				}
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				now := time.Now()
				mu.Lock()
				if ok {
					lats = append(lats, now.Sub(start))
				} else {
					if failed == 0 {
						firstFail, firstErr = now, failure(resp, err)
					}
					failed++
					lastFail = now
				}
				mu.Unlock()
			}
		})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	total, totalFailed := 0, 0
	for el := 1; ; el++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			fmt.Fprintf(out, "load: %d requests, %d failed\n", total, totalFailed)
			return 0
		case <-tick.C:
		}
		mu.Lock()
		ls, f, from, to, why := lats, failed, firstFail, lastFail, firstErr
		lats, failed = nil, 0
		mu.Unlock()
		slices.Sort(ls)
		p95 := time.Duration(0)
		if len(ls) > 0 {
			p95 = ls[len(ls)*95/100]
		}
		total, totalFailed = total+len(ls)+f, totalFailed+f
		when := ""
		if f > 0 {
			when = fmt.Sprintf(" (%s to %s, first: %s)", from.Format(stamp), to.Format(stamp), why)
		}
		fmt.Fprintf(out, "load %2ds: %5d ok, %d failed%s, p95 %s\n", el, len(ls), f, when, p95.Round(time.Millisecond))
	}
}

// stamp is how the load mode writes when requests failed: the time of day,
// to the millisecond, to read beside tend's journal.
const stamp = "15:04:05.000"

// failure says why a request failed: its error, or its status.
func failure(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}
