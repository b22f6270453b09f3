package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// availability runs the kill rotation once per target, each time from a settled stack
// (every replica ready and past its restart streak), and records what the proxy itself
// saw next to what the clients saw. nginx's upstream holds the addresses reps had.
func availability(ctx context.Context, c config, ng *harness.Nginx, targets []*target, reps []harness.Replica) {
	fmt.Println()
	fmt.Printf("availability (%s of GET / from %d keep-alive clients, %s timeout; docker kill every %s, rotating):\n",
		c.availFor, c.workers, c.reqTimeout, c.killEvery)
	for _, tg := range targets {
		if tg.skip != "" || ctx.Err() != nil {
			continue
		}
		st := tg.stack
		before, err := st.WaitSettled(ctx, c.settle)
		if err != nil {
			fmt.Printf("  %-16s  FAILED: %v\n", tg.name, err)
			continue
		}
		cur, err := st.List(ctx)
		if err != nil {
			fmt.Printf("  %-16s  FAILED: %v\n", tg.name, err)
			continue
		}
		if tg.key == "nginx" && !sameAddrs(cur, reps) {
			fmt.Printf("  %-16s  note: its upstream addresses %s are no longer the replicas' (%s)\n", tg.name, addrList(reps), addrList(cur))
		}
		var account func() string
		if tg.key == "nginx" {
			account = ng.Account()
		} else {
			account = st.T.ProxyAccount(ctx, st.Name)
		}
		r := loadWhileKilling(ctx, c, st, tg.url, cur)
		after, err := st.WaitSettled(ctx, 0)
		if err != nil {
			r.Notes = append(r.Notes, "replicas not ready again: "+err.Error())
		} else {
			r.Restarts = harness.Restarts(after) - harness.Restarts(before)
		}
		r.Notes = append(r.Notes, account())
		r.Notes = append(r.Notes, addressChanges(ctx, st, cur))
		tg.avail = &r
		printAvail(tg.name, r)
	}
}

// addressChanges compares the replicas' addresses with those they had before the run.
// An engine restart can hand a container another free address of the network.
func addressChanges(ctx context.Context, st *harness.Project, was []harness.Replica) string {
	now, err := st.List(ctx)
	if err != nil {
		return "addresses after: " + err.Error()
	}
	var changed []string
	for i, r := range now {
		if i < len(was) && r.IP != was[i].IP {
			changed = append(changed, fmt.Sprintf("%s %s -> %s", st.Short(r), was[i].IP, r.IP))
		}
	}
	switch {
	case len(changed) == 0:
		return "replica addresses unchanged by the restarts"
	case sameAddrs(now, was):
		return "restarts swapped replica addresses: " + strings.Join(changed, ", ") + " (the same set)"
	default:
		return "restarts changed replica addresses: " + strings.Join(changed, ", ") + " (the no-replica-answering figures are unreliable)"
	}
}

func sameAddrs(a, b []harness.Replica) bool {
	return harness.SameSet(harness.Addrs(a, 8080), harness.Addrs(b, 8080))
}

// addrList is the sorted set of the replicas' addresses.
func addrList(reps []harness.Replica) string {
	var ips []string
	for _, r := range reps {
		ips = append(ips, r.IP)
	}
	slices.Sort(ips)
	return strings.Join(ips, " ")
}

func printAvail(name string, r availResult) {
	var ks []string
	for _, k := range r.Kills {
		s := fmt.Sprintf("%s@%.1fs", k.name, k.at.Seconds())
		if k.err != nil {
			s += " (failed: " + k.err.Error() + ")"
		}
		ks = append(ks, s)
	}
	fmt.Printf("  %-16s  %d requests, %d failed, %.0f req/s, p50 %s ms, p99 %s ms, max %s ms; kills %s; tend restarts %d\n",
		name, r.Total, r.Failed, float64(r.Total)/r.Elapsed.Seconds(), harness.Millis(r.Lat.P50), harness.Millis(r.Lat.P99), harness.Millis(r.Lat.Max), strings.Join(ks, " "), r.Restarts)
	down := "no time"
	if len(r.AllDown) > 0 {
		down = fmt.Sprintf("%s ms in %d spans", harness.Millis(harness.Total(r.AllDown)), len(r.AllDown))
	}
	fmt.Printf("                    no replica answering its own health check (polled every 20 ms): %s; failed requests overlapping that: %d\n",
		down, r.FailedAllDown)
	if r.Failed > 0 {
		var secs []string
		for _, s := range slices.Sorted(maps.Keys(r.FailSecond)) {
			secs = append(secs, fmt.Sprintf("%ds: %d", s, r.FailSecond[s]))
		}
		fmt.Printf("                    failures by second of the run: %s\n", strings.Join(secs, ", "))
		fmt.Printf("                    failures by kind: %s\n", r.Reasons.Line())
	}
	for _, n := range r.Notes {
		fmt.Printf("                    %s\n", strings.ReplaceAll(n, "\n          ", "\n                    "))
	}
}
