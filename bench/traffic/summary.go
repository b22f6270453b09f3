package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// medians are a target's wrk figures, each the median over its rounds.
type medians struct {
	n                          int
	rps, rpsMin, rpsMax        float64
	p50, p99                   time.Duration
	wrk, proxy, replicas, rest float64 // % of one CPU
	proxyPerReq                time.Duration
	cpuOK                      bool
}

func summarize(runs []wrkResult) medians {
	m := medians{n: len(runs), cpuOK: len(runs) > 0}
	if len(runs) == 0 {
		return m
	}
	var rps, wrk, proxy, reps, rest []float64
	var p50, p99, perReq []time.Duration
	for _, r := range runs {
		rps = append(rps, r.RPS)
		p50, p99 = append(p50, r.P50), append(p99, r.P99)
		c := r.CPU
		m.cpuOK = m.cpuOK && c.OK
		wrk, proxy = append(wrk, c.pct(c.Wrk)), append(proxy, c.pct(c.Proxy))
		reps, rest = append(reps, c.pct(c.Replicas)), append(rest, c.pct(c.Rest()))
		if r.Requests > 0 {
			perReq = append(perReq, c.Proxy/time.Duration(r.Requests))
		}
	}
	m.rps, m.rpsMin, m.rpsMax = median(rps), slices.Min(rps), slices.Max(rps)
	m.p50, m.p99 = harness.Summarize(p50).Median, harness.Summarize(p99).Median
	m.wrk, m.proxy, m.replicas, m.rest = median(wrk), median(proxy), median(reps), median(rest)
	m.proxyPerReq = harness.Summarize(perReq).Median
	return m
}

// median of xs; the mean of the middle two for an even count.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func printSummary(targets, availTargets []*target) {
	fmt.Println()
	fmt.Println("summary, throughput and latency (medians over the rounds):")
	rows := [][]string{{"target", "rounds", "req/s", "min", "max", "p50 ms", "p99 ms", "cpu % wrk / proxy / replicas / rest", "proxy cpu/req", "note"}}
	ms := map[string]medians{}
	for _, tg := range targets {
		if tg.skip != "" {
			rows = append(rows, []string{tg.name, "-", "-", "-", "-", "-", "-", "-", "-", "not measured: " + harness.Tail(tg.skip, 100)})
			continue
		}
		m := summarize(tg.runs)
		ms[tg.key] = m
		if m.n == 0 {
			rows = append(rows, []string{tg.name, "0", "-", "-", "-", "-", "-", "-", "-", "no run succeeded"})
			continue
		}
		cpu, perReq := "n/a", "n/a"
		if m.cpuOK {
			cpu = fmt.Sprintf("%.0f / %.0f / %.0f / %.0f", m.wrk, m.proxy, m.replicas, m.rest)
			perReq = fmt.Sprintf("%d µs", m.proxyPerReq.Microseconds())
		}
		if tg.proxyPids == nil {
			perReq = "-"
		}
		rows = append(rows, []string{tg.name, fmt.Sprint(m.n), fmt.Sprintf("%.0f", m.rps), fmt.Sprintf("%.0f", m.rpsMin),
			fmt.Sprintf("%.0f", m.rpsMax), harness.Millis(m.p50), harness.Millis(m.p99), cpu, perReq, ""})
	}
	fmt.Print(harness.Table(rows))

	fmt.Println()
	fmt.Println("goals (medians):")
	tend, ng, direct := ms["tend"], ms["nginx"], ms["direct"]
	goals := [][]string{{"ratio", "value", "goal", "verdict"}}
	goals = append(goals, ratioRow("tend / nginx, req/s", tend.rps, ng.rps, tend.n, ng.n, ">=", 1.0))
	goals = append(goals, ratioRow("tend / nginx, p99", tend.p99.Seconds(), ng.p99.Seconds(), tend.n, ng.n, "<=", 1.0))
	goals = append(goals, ratioRow("tend / direct, req/s", tend.rps, direct.rps, tend.n, direct.n, "", 0))
	goals = append(goals, ratioRow("nginx / direct, req/s", ng.rps, direct.rps, ng.n, direct.n, "", 0))
	if tend.cpuOK && ng.cpuOK {
		goals = append(goals, ratioRow("tend / nginx, proxy CPU per request", tend.proxyPerReq.Seconds(), ng.proxyPerReq.Seconds(), tend.n, ng.n, "", 0))
	}
	fmt.Print(harness.Table(goals))

	printAvailSummary(availTargets)
}

// ratioRow formats a/b and its verdict against goal (op ">=" or "<="; "" for information).
func ratioRow(label string, a, b float64, na, nb int, op string, goal float64) []string {
	if na == 0 || nb == 0 || b == 0 {
		return []string{label, "n/a", goalText(op, goal), "not measured"}
	}
	r := a / b
	v := "for information"
	switch {
	case op == ">=" && r >= goal, op == "<=" && r <= goal:
		v = "MET"
	case op != "":
		v = "NOT MET"
	}
	return []string{label, fmt.Sprintf("%.2fx", r), goalText(op, goal), v}
}

func goalText(op string, goal float64) string {
	if op == "" {
		return "-"
	}
	return fmt.Sprintf("%s %.2fx", op, goal)
}

func printAvailSummary(targets []*target) {
	fmt.Println()
	fmt.Println("summary, availability (a replica killed every interval):")
	rows := [][]string{{"target", "requests", "failed", "req/s", "p50 ms", "p99 ms", "max ms", "kills", "tend restarts", "failures by kind"}}
	var verdicts []string
	for _, tg := range targets {
		r := tg.avail
		if tg.key != "nginx" {
			verdicts = append(verdicts, tg.name+" "+availVerdict(r))
		}
		if r == nil {
			why := "not measured"
			if tg.skip != "" {
				why += ": " + harness.Tail(tg.skip, 100)
			}
			rows = append(rows, []string{tg.name, "-", "-", "-", "-", "-", "-", "-", "-", why})
			continue
		}
		rows = append(rows, []string{tg.name, fmt.Sprint(r.Total), fmt.Sprint(r.Failed),
			fmt.Sprintf("%.0f", float64(r.Total)/r.Elapsed.Seconds()), harness.Millis(r.Lat.P50), harness.Millis(r.Lat.P99), harness.Millis(r.Lat.Max),
			fmt.Sprint(len(r.Kills)), fmt.Sprint(r.Restarts), r.Reasons.Line()})
	}
	fmt.Print(harness.Table(rows))
	fmt.Println()
	fmt.Printf("goal: no request through tend fails while replicas are killed: %s\n", strings.Join(verdicts, "; "))
}

func availVerdict(r *availResult) string {
	switch {
	case r == nil:
		return "not measured"
	case r.Failed == 0 && len(r.Kills) > 0:
		return "0: MET"
	default:
		return fmt.Sprintf("%d: NOT MET", r.Failed)
	}
}
