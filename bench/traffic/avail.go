package main

import (
	"context"
	"net/http"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// availResult is one availability run: requests sent while replicas were being killed.
type availResult struct {
	Elapsed       time.Duration
	Total, Failed int64
	Reasons       harness.Tally
	FailSecond    map[int]int // failures by whole second of the run
	Lat           harness.Latencies
	Kills         []kill
	// AllDown is when no replica's address answered its own health check;
	// FailedAllDown counts the failed requests that overlapped such a time.
	AllDown       []harness.Span
	FailedAllDown int64
	Restarts      int      // restarts tend counted for the replicas over the run
	Notes         []string // the proxy's own account (retries, error log) and address changes
}

type kill struct {
	name string
	at   time.Duration
	err  error
}

// loadWhileKilling sends GET url from c.workers keep-alive clients for c.availFor while
// killing one replica every c.killEvery, rotating through victims. A request still in
// flight when the time is up is waited for (at most c.reqTimeout) and counted.
func loadWhileKilling(ctx context.Context, c config, st *harness.Project, url string, victims []harness.Replica) availResult {
	load := harness.Load{
		Kinds: []harness.ClientKind{harness.KeepAlive}, Clients: c.workers,
		Base: func(harness.ClientKind) string { return url }, GetPath: "/",
		Timeout: c.reqTimeout, For: c.availFor,
	}
	var kills []kill
	run := load.RunWhile(ctx, victims, func(start time.Time) { kills = killer(ctx, c, st, victims, start) })
	r := availResult{Elapsed: run.Elapsed, Reasons: harness.Tally{}, FailSecond: map[int]int{}, Kills: kills, AllDown: run.AllDown}
	var lat []time.Duration
	for _, q := range run.Requests {
		lat = append(lat, q.Took)
		if q.Fail == "" {
			continue
		}
		r.Failed++
		r.Reasons.Add(q.Fail, 1)
		r.FailSecond[int(q.From/time.Second)]++
		if harness.Overlaps(r.AllDown, q.Span()) {
			r.FailedAllDown++
		}
	}
	r.Total = int64(len(lat))
	r.Lat = harness.LatenciesOf(lat)
	return r
}

// killer kills victims in turn, half an interval in and then every c.killEvery, while
// the run lasts.
func killer(ctx context.Context, c config, st *harness.Project, victims []harness.Replica, start time.Time) []kill {
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
		err := st.D.Kill(ctx, v.ID)
		out = append(out, kill{name: st.Short(v), at: t, err: err})
	}
}

// getOnce checks that a target answers GET / with a 2xx.
func getOnce(ctx context.Context, u string) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return harness.Send(ctx, hc, http.MethodGet, u)
}
