package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// availResult is one availability run: requests sent while replicas were being killed.
type availResult struct {
	Elapsed       time.Duration
	Total, Failed int64
	Reasons       map[string]int
	FailSecond    map[int]int // failures by whole second of the run
	P50, P99, Max time.Duration
	Kills         []kill
	// AllDown is when no replica's address answered its own health check;
	// FailedAllDown counts the failed requests that overlapped such a time.
	AllDown       []span
	FailedAllDown int64
	Restarts      int      // restarts tend counted for the replicas over the run
	Notes         []string // the proxy's own account (retries, error log) and address changes
}

type kill struct {
	name string
	at   time.Duration
	err  error
}

// workerResult is what one client saw.
type workerResult struct {
	lat     []time.Duration
	failed  int64
	reasons map[string]int
	fails   []span // each failed request, from sending to failing
}

// loadWhileKilling sends GET url from c.workers keep-alive clients for c.availFor while
// killing one replica every c.killEvery, rotating through victims. A request still in
// flight when the time is up is waited for (at most c.reqTimeout) and counted.
func loadWhileKilling(ctx context.Context, c config, url string, victims []replica) availResult {
	tr := &http.Transport{MaxIdleConnsPerHost: c.workers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: c.reqTimeout}
	start := time.Now()
	var ips []string
	for _, v := range victims {
		ips = append(ips, v.ip)
	}
	wat := newWatcher(ips, start, 20*time.Millisecond)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching sync.WaitGroup
	watching.Go(func() { wat.run(watchCtx) })
	results := make([]workerResult, c.workers)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = loadWorker(ctx, hc, url, start, c.availFor) })
	}
	kills := killer(ctx, c, victims, start)
	wg.Wait()
	stopWatch()
	watching.Wait()

	r := availResult{Elapsed: time.Since(start), Reasons: map[string]int{}, FailSecond: map[int]int{}, Kills: kills}
	r.AllDown = wat.allDown()
	var lat []time.Duration
	for _, w := range results {
		lat = append(lat, w.lat...)
		r.Failed += w.failed
		for k, v := range w.reasons {
			r.Reasons[k] += v
		}
		for _, f := range w.fails {
			r.FailSecond[int(f.from/time.Second)]++
			if overlaps(r.AllDown, f) {
				r.FailedAllDown++
			}
		}
	}
	r.Total = int64(len(lat))
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50, r.P99, r.Max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return r
}

func loadWorker(ctx context.Context, hc *http.Client, url string, start time.Time, until time.Duration) workerResult {
	w := workerResult{reasons: map[string]int{}}
	for time.Since(start) < until && ctx.Err() == nil {
		t0 := time.Now()
		err := getDiscard(ctx, hc, url)
		if ctx.Err() != nil {
			break // interrupted: not the target's failure
		}
		w.lat = append(w.lat, time.Since(t0))
		if err != nil {
			w.failed++
			w.reasons[reason(err)]++
			w.fails = append(w.fails, span{t0.Sub(start), time.Since(start)})
		}
	}
	return w
}

// killer kills victims in turn, half an interval in and then every c.killEvery, while
// the run lasts.
func killer(ctx context.Context, c config, victims []replica, start time.Time) []kill {
	var out []kill
	for k := 0; ; k++ {
		at := c.killEvery/2 + time.Duration(k)*c.killEvery
		if at >= c.availFor {
			return out
		}
		select {
		case <-time.After(time.Until(start.Add(at))):
		case <-ctx.Done():
			return out
		}
		v := victims[k%len(victims)]
		t := time.Since(start)
		_, err := harness.Run(ctx, "docker", "kill", v.name)
		out = append(out, kill{name: v.short(), at: t, err: err})
	}
}

// statusError is an answer outside 2xx.
type statusError int

func (e statusError) Error() string { return fmt.Sprintf("HTTP %d", int(e)) }

// getDiscard sends GET u and reads the whole answer; anything but a 2xx is an error.
func getDiscard(ctx context.Context, hc *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError(resp.StatusCode)
	}
	return err
}

var addrPort = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// reason names a failure without what differs between connections (addresses, ports).
func reason(err error) string {
	var se statusError
	if errors.As(err, &se) {
		return se.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timeout"
		}
		err = ue.Err
	}
	return addrPort.ReplaceAllString(err.Error(), "ADDR")
}

// get returns the body of a 2xx answer to GET u.
func get(ctx context.Context, hc *http.Client, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), err
}

// getOnce checks that a target answers GET / with a 2xx.
func getOnce(ctx context.Context, u string) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	_, err := get(ctx, hc, u)
	return err
}
