package main

import (
	"fmt"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// stallLag is the answer lag beyond which a trial is suspected of waiting on the
// neighbour cache (which retries every 1 s) rather than on the peer.
const stallLag = 250 * time.Millisecond

func printSummary(peers []*peer, c config) {
	sums := map[string]harness.Summary{}
	rows := [][]string{{"peer", "trials", "median s", "min s", "max s", "restart median ms", "lag median/max ms", "note"}}
	var stalls int
	for _, p := range peers {
		if p.skip != "" {
			rows = append(rows, []string{p.name, "-", "-", "-", "-", "-", "-", "not measured: " + harness.Tail(p.skip, 100)})
			continue
		}
		var rec, lag, restart []time.Duration
		failed := 0
		for _, t := range p.trials {
			if t.Err != nil {
				failed++
				continue
			}
			rec = append(rec, t.Recovery)
			if t.PhaseOK {
				restart = append(restart, t.Restart)
			}
			if t.LagOK {
				lag = append(lag, t.LagProc)
				if t.LagProc > stallLag {
					stalls++
				}
			}
		}
		s, l, r := harness.Summarize(rec), harness.Summarize(lag), harness.Summarize(restart)
		sums[p.key] = s
		note := ""
		if failed > 0 {
			note = fmt.Sprintf("%d trials failed", failed)
		}
		if s.N == 0 {
			rows = append(rows, []string{p.name, "0", "-", "-", "-", "-", "-", note})
			continue
		}
		rows = append(rows, []string{p.name, fmt.Sprint(s.N), harness.Secs(s.Median), harness.Secs(s.Min), harness.Secs(s.Max),
			orNA(r, harness.Ms(r.Median)), orNA(l, harness.Ms(l.Median)+" / "+harness.Ms(l.Max)), note})
	}
	fmt.Println()
	fmt.Println("summary:")
	fmt.Print(harness.Table(rows))

	fmt.Println()
	fmt.Println("goals (medians):")
	goals := [][]string{{"ratio", "value", "goal", "verdict"}}
	for _, g := range []struct {
		a, b, label string
		goal        float64
	}{
		{"tend", "always", "tend / restart=always", 0.85},
		{"tend", "swarm-0s", "tend / swarm (delay 0s)", 0.30},
	} {
		r, v := harness.Ratio(sums[g.a], sums[g.b], g.goal)
		goals = append(goals, []string{g.label, r, fmt.Sprintf("<= %.2fx", g.goal), v})
	}
	fmt.Print(harness.Table(goals))

	fmt.Println()
	if stalls > 0 {
		fmt.Printf("method check: WARNING: %d trials answered more than %s after their process started: the poller stalled\n", stalls, stallLag)
	} else {
		fmt.Printf("method check: every new process was seen within %s of its own start (a neighbour-cache stall costs ~1 s)\n", stallLag)
	}
}

func orNA(s harness.Summary, v string) string {
	if s.N == 0 {
		return "n/a"
	}
	return v
}
