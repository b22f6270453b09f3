package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// availability runs the kill rotation once per proxy, each time from a settled stack
// (every replica ready and past its restart streak), and records what the proxy itself
// saw next to what the clients saw.
func availability(ctx context.Context, c config, st *stack, ng *nginx, targets []*target, reps []replica) {
	fmt.Println()
	fmt.Printf("availability (%s of GET / from %d keep-alive clients, %s timeout; docker kill every %s, rotating):\n",
		c.availFor, c.workers, c.reqTimeout, c.killEvery)
	for _, tg := range targets {
		if tg.skip != "" || ctx.Err() != nil {
			continue
		}
		before, err := st.waitSettled(ctx, c.settle)
		if err != nil {
			fmt.Printf("  %-6s  FAILED: %v\n", tg.name, err)
			continue
		}
		cur, err := st.replicaList(ctx)
		if err != nil {
			fmt.Printf("  %-6s  FAILED: %v\n", tg.name, err)
			continue
		}
		if tg.key == "nginx" && !sameAddrs(cur, reps) {
			fmt.Printf("  %-6s  note: its upstream addresses %s are no longer the replicas' (%s)\n", tg.name, addrList(reps), addrList(cur))
		}
		account := accountTend(ctx, st)
		if tg.key == "nginx" {
			account = accountNginx(ng)
		}
		r := loadWhileKilling(ctx, c, tg.url, cur)
		after, err := st.waitSettled(ctx, 0)
		if err != nil {
			r.Notes = append(r.Notes, "replicas not ready again: "+err.Error())
		} else {
			r.Restarts = restarts(after) - restarts(before)
		}
		r.Notes = append(r.Notes, account())
		r.Notes = append(r.Notes, addressChanges(ctx, st, cur))
		tg.avail = &r
		printAvail(tg.name, r)
	}
}

func restarts(reps []psReplica) int {
	n := 0
	for _, r := range reps {
		n += r.Restarts
	}
	return n
}

// addressChanges compares the replicas' addresses with those they had before the run.
// An engine restart can hand a container another free address of the network.
func addressChanges(ctx context.Context, st *stack, was []replica) string {
	now, err := st.replicaList(ctx)
	if err != nil {
		return "addresses after: " + err.Error()
	}
	var changed []string
	for i, r := range now {
		if i < len(was) && r.ip != was[i].ip {
			changed = append(changed, fmt.Sprintf("%s %s -> %s", r.short(), was[i].ip, r.ip))
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

func sameAddrs(a, b []replica) bool {
	return addrList(a) == addrList(b)
}

// addrList is the sorted set of the replicas' addresses.
func addrList(reps []replica) string {
	var ips []string
	for _, r := range reps {
		ips = append(ips, r.ip)
	}
	slices.Sort(ips)
	return strings.Join(ips, " ")
}

// accountTend reads tend's proxy counters now, and returns what changed by the time the
// returned function is called.
func accountTend(ctx context.Context, st *stack) func() string {
	read := func() (proxyCounters, error) {
		text, err := st.metrics(ctx)
		if err != nil {
			return proxyCounters{}, err
		}
		return parseCounters(text), nil
	}
	before, err := read()
	logFrom := len(st.t.Log())
	return func() string {
		after, err2 := read()
		if err = harness.FirstErr(err, err2); err != nil {
			return "tend's metrics: " + err.Error()
		}
		d := after.minus(before)
		s := fmt.Sprintf("tend's proxy: %d attempts to replicas, %d retries, failed attempts %s, %d answered with no replica ready, ejections %s",
			d.attempts, d.retries, byReplica(d.non2xx), d.noReplica, byReplica(d.ejections))
		if log := st.t.Log(); len(log) > logFrom {
			s += failedAttempts(log[logFrom:])
		}
		return s
	}
}

// failedAttempts sums up the daemon's debug lines on failed attempts: how many, by
// replica and error (addresses left out).
func failedAttempts(log string) string {
	n := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="proxy: attempt failed"`) {
			continue
		}
		n[logValue(line, "replica")+": "+addrPort.ReplaceAllString(logValue(line, "err"), "ADDR")]++
	}
	if len(n) == 0 {
		return ""
	}
	return "\n          its log on the failed attempts: " + tally(n)
}

// tally lists counts by what was counted, in order: "3 x a; 1 x b".
func tally(n map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%d x %s", n[k], k))
	}
	return strings.Join(parts, "; ")
}

// logValue is key's value in a log line of slog's text format (quoted or not).
func logValue(line, key string) string {
	_, rest, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		return ""
	}
	if v, err := strconv.QuotedPrefix(rest); err == nil {
		v, _ = strconv.Unquote(v)
		return v
	}
	v, _, _ := strings.Cut(rest, " ")
	return v
}

// proxyCounters are tend's proxy counters for the project.
type proxyCounters struct {
	attempts, retries, noReplica int64
	non2xx, ejections            map[string]int64 // by replica ("web/1")
}

func (a proxyCounters) minus(b proxyCounters) proxyCounters {
	return proxyCounters{a.attempts - b.attempts, a.retries - b.retries, a.noReplica - b.noReplica,
		minusMap(a.non2xx, b.non2xx), minusMap(a.ejections, b.ejections)}
}

func minusMap(a, b map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// parseCounters reads the project's series from Prometheus text: requests_total is by
// replica (empty when none was ready) and code.
func parseCounters(text string) proxyCounters {
	c := proxyCounters{non2xx: map[string]int64{}, ejections: map[string]int64{}}
	for _, line := range strings.Split(text, "\n") {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !strings.Contains(labels, `project="`+project+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		n, rep := int64(v), label(labels, "replica")
		switch name {
		case "tend_proxy_requests_total":
			if rep == "" {
				c.noReplica += n
				continue
			}
			c.attempts += n
			if !strings.HasPrefix(label(labels, "code"), "2") {
				c.non2xx[rep] += n
			}
		case "tend_proxy_retries_total":
			c.retries += n
		case "tend_proxy_ejections_total":
			c.ejections[rep] += n
		}
	}
	return c
}

// label returns a label's value from a series' labels: k1="v1",k2="v2".
func label(labels, key string) string {
	_, rest, ok := strings.Cut(","+labels, ","+key+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// byReplica formats counts by replica: "web/1 3, web/2 380", or "0".
func byReplica(m map[string]int64) string {
	var parts []string
	var sum int64
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		sum += m[k]
	}
	if len(parts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", sum, strings.Join(parts, ", "))
}

// accountNginx remembers where nginx's error log ends, and returns a function that
// summarizes what was logged since.
func accountNginx(ng *nginx) func() string {
	off := ng.errorLogSize()
	return func() string {
		errs := upstreamErrors(ng.errorLog(off))
		if len(errs) == 0 {
			return "nginx error log: nothing"
		}
		return "nginx error log: " + tally(errs)
	}
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
	fmt.Printf("  %-6s  %d requests, %d failed, %.0f req/s, p50 %s ms, p99 %s ms, max %s ms; kills %s; tend restarts %d\n",
		name, r.Total, r.Failed, float64(r.Total)/r.Elapsed.Seconds(), msf(r.P50), msf(r.P99), msf(r.Max), strings.Join(ks, " "), r.Restarts)
	down := "no time"
	if len(r.AllDown) > 0 {
		down = fmt.Sprintf("%s ms in %d spans", msf(total(r.AllDown)), len(r.AllDown))
	}
	fmt.Printf("          no replica answering its own health check (polled every 20 ms): %s; failed requests overlapping that: %d\n",
		down, r.FailedAllDown)
	if r.Failed > 0 {
		var secs []string
		for _, s := range slices.Sorted(maps.Keys(r.FailSecond)) {
			secs = append(secs, fmt.Sprintf("%ds: %d", s, r.FailSecond[s]))
		}
		fmt.Printf("          failures by second of the run: %s\n", strings.Join(secs, ", "))
		for _, k := range slices.Sorted(maps.Keys(r.Reasons)) {
			fmt.Printf("          %d x %s\n", r.Reasons[k], k)
		}
	}
	for _, n := range r.Notes {
		fmt.Printf("          %s\n", n)
	}
}

// unixTransport sends every request to the unix socket at path.
func unixTransport(path string) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
}
