package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// peer is one proxy the clients go through.
type peer struct {
	harness.Peer
	base func(harness.ClientKind) string // where each kind of client sends
	ng   *harness.Nginx                  // nil for tend
	skip string                          // why it is not measured
}

// oneRun waits for ready replicas and the gap after the last run (which ended at
// lastEnd), then sends the load through pe while killing replicas on pt's schedule, and
// returns what happened and when the run ended.
func oneRun(ctx context.Context, c config, p *harness.Project, pe *peer, pt part, round int, lastEnd time.Time) (runResult, time.Time) {
	rr := runResult{Part: pt.name, Round: round, Peer: pe.Key}
	fail := func(err error) (runResult, time.Time) {
		rr.Err = err.Error()
		return rr, time.Now()
	}
	settle := c.settle
	if pt.key == 2 {
		settle = max(settle, c.fastSettle)
	}
	before, err := p.WaitSettled(ctx, settle)
	if err != nil {
		return fail(err)
	}
	select {
	case <-time.After(time.Until(lastEnd.Add(c.gap))):
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	reps, err := p.List(ctx)
	if err != nil {
		return fail(err)
	}
	var account func() string
	if pe.ng != nil {
		// nginx follows the replicas between runs, as a config generator would.
		if was, now := pe.ng.Upstreams(), harness.Addrs(reps, 8080); !harness.SameSet(was, now) {
			if err := pe.ng.SetUpstreams(ctx, now); err != nil {
				return fail(err)
			}
			rr.Notes = append(rr.Notes, fmt.Sprintf("nginx reloaded before the run: upstream %s -> %s", strings.Join(was, " "), strings.Join(now, " ")))
		}
		account = pe.ng.Account()
	} else {
		account = p.T.ProxyAccount(ctx, p.Name)
	}

	load := harness.Load{
		Kinds: c.kinds, Clients: c.clients, Base: pe.base,
		GetPath: "/", PostPath: "/heal", PostEvery: c.postEvery,
		Timeout: c.reqTimeout, For: c.duration,
	}
	var names []string
	for _, r := range reps {
		names = append(names, p.Short(r))
	}
	v := newVictims(c.seed, pt.key*1000+round, names)
	run := load.RunWhile(ctx, reps, func(start time.Time) {
		rr.Kills = killer(ctx, p, killTimes(pt.every, c.duration), v, start)
	})
	rr.Start, rr.Elapsed, rr.AllDown = run.Start, run.Elapsed, run.AllDown
	end := run.Start.Add(run.Elapsed)
	if ctx.Err() != nil {
		return fail(fmt.Errorf("interrupted after %.1fs (not counted)", rr.Elapsed.Seconds()))
	}
	rr.tally(c.kinds, c.clients, run.Requests)

	after, err := p.WaitSettled(ctx, 0)
	if err != nil {
		rr.Notes = append(rr.Notes, "replicas not ready again: "+err.Error())
	} else {
		rr.Restarts = harness.Restarts(after) - harness.Restarts(before)
	}
	rr.Notes = append(rr.Notes, account())
	if now, err := p.List(ctx); err == nil && !harness.SameSet(harness.Addrs(now, 8080), harness.Addrs(reps, 8080)) {
		rr.Notes = append(rr.Notes, fmt.Sprintf("replica addresses changed during the run: %s -> %s (not followed within a run)",
			strings.Join(harness.Addrs(reps, 8080), " "), strings.Join(harness.Addrs(now, 8080), " ")))
	}
	return rr, end
}
