package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

func printTrial(i, n int, p *peer, tr trial) {
	if tr.Err != nil {
		fmt.Printf("  %d/%d  %-24s  FAILED: %v\n", i, n, p.name, tr.Err)
		return
	}
	head := "never  "
	if tr.Done {
		head = harness.Secs(tr.Heal) + " s"
	}
	fmt.Printf("  %d/%d  %-24s  %s  %s", i, n, p.name, head, timeline(tr))
	if tr.Attempts > 0 {
		fmt.Printf("; GET /health on the new container: %d attempts, %d failed", tr.Attempts, tr.Failed)
	}
	if tr.Left != "" {
		fmt.Printf("; %s", tr.Left)
	}
	for _, n := range tr.Notes {
		fmt.Printf("; %s", n)
	}
	fmt.Println()
}

// timeline lists a trial's milestones in the order they happened.
func timeline(tr trial) string {
	type ms struct {
		label string
		at    time.Duration
	}
	var all []ms
	for _, m := range milestones {
		if at, ok := tr.At[m.key]; ok {
			all = append(all, ms{m.label, at})
		}
	}
	slices.SortStableFunc(all, func(a, b ms) int { return cmp.Compare(a.at, b.at) })
	parts := make([]string, len(all))
	for i, m := range all {
		parts[i] = fmt.Sprintf("%s %.2f", m.label, m.at.Seconds())
	}
	return strings.Join(parts, ", ")
}

// outcome sums up a peer's trials.
type outcome struct {
	heal   harness.Summary            // trials that were done
	at     map[string]harness.Summary // each milestone over the trials that had it
	never  int                        // trials without a replacement within the cap
	failed int                        // trials that could not be measured
	left   string                     // what the last "never" trial found
	trials []trial                    // the measured ones (no error)
}

func summarize(p *peer) outcome {
	o := outcome{at: map[string]harness.Summary{}}
	var heal []time.Duration
	at := map[string][]time.Duration{}
	for _, t := range p.trials {
		switch {
		case t.Err != nil:
			o.failed++
			continue
		case t.Done:
			heal = append(heal, t.Heal)
		default:
			o.never++
			o.left = t.Left
		}
		o.trials = append(o.trials, t)
		for k, d := range t.At {
			at[k] = append(at[k], d)
		}
	}
	o.heal = harness.Summarize(heal)
	for k, ds := range at {
		o.at[k] = harness.Summarize(ds)
	}
	return o
}

func printSummary(peers []*peer) {
	outs := map[string]outcome{}
	rows := [][]string{{"peer", "trials", "median s", "min s", "max s", "note"}}
	for _, p := range peers {
		if p.skip != "" {
			rows = append(rows, []string{p.name, "-", "-", "-", "-", "not measured: " + harness.Tail(p.skip, 100)})
			continue
		}
		o := summarize(p)
		outs[p.key] = o
		var notes []string
		if o.never > 0 {
			notes = append(notes, fmt.Sprintf("never in %d of %d trials (%s)", o.never, len(p.trials), o.left))
		}
		if o.failed > 0 {
			notes = append(notes, fmt.Sprintf("%d trials failed", o.failed))
		}
		if o.heal.N == 0 {
			rows = append(rows, []string{p.name, fmt.Sprint(len(p.trials)), "never", "-", "-", strings.Join(notes, "; ")})
			continue
		}
		rows = append(rows, []string{p.name, fmt.Sprint(len(p.trials)), harness.Secs(o.heal.Median),
			harness.Secs(o.heal.Min), harness.Secs(o.heal.Max), strings.Join(notes, "; ")})
	}
	fmt.Println()
	fmt.Println("summary (POST /sick -> a new container answers GET /health 200 and the sick one has stopped):")
	fmt.Print(harness.Table(rows))

	fmt.Println()
	fmt.Println("timeline (medians over the trials that had each step, seconds after POST /sick; - : not applicable):")
	fmt.Print(harness.Table(timelineRows(peers, outs)))

	fmt.Println()
	fmt.Println("steps (each: the median over the trials of the time since the step before; the first: after POST /sick):")
	for _, p := range peers {
		if o, ok := outs[p.key]; ok {
			fmt.Printf("  %-24s  %s\n", p.name, steps(o))
		}
	}

	fmt.Println()
	printRotation(peers, outs)

	fmt.Println()
	fmt.Println("goals (medians):")
	if rows := goalRows(peers, outs); len(rows) > 1 {
		fmt.Print(harness.Table(rows))
	} else {
		fmt.Println("  no ratio: a tend peer and a swarm peer must both be measured")
	}
}

func timelineRows(peers []*peer, outs map[string]outcome) [][]string {
	head := []string{"peer"}
	for _, m := range milestones {
		head = append(head, m.label)
	}
	rows := [][]string{head}
	for _, p := range peers {
		o, ok := outs[p.key]
		if !ok {
			continue
		}
		row := []string{p.name}
		for _, m := range milestones {
			s := o.at[m.key]
			if s.N == 0 {
				row = append(row, "-")
				continue
			}
			row = append(row, fmt.Sprintf("%.2f", s.Median.Seconds()))
		}
		rows = append(rows, row)
	}
	return rows
}

// printRotation reports when the sick replica left rotation, where that is observable.
func printRotation(peers []*peer, outs map[string]outcome) {
	fmt.Println("out of rotation:")
	// The first failing check comes after POST /sick, so for each trial
	// (unready - t0) - (failureThreshold-1) x interval = the wait for that check (>= 0) + tend's processing.
	detect := time.Duration(failureThreshold-1) * checkInterval
	for _, p := range peers {
		o, ok := outs[p.key]
		if !ok {
			continue
		}
		un, fail := o.at[msUnready], o.at[msFail]
		switch {
		case p.project != "" && un.N > 0 && fail.N == 0:
			fmt.Printf("  %s: POST /sick -> unready in tend's journal %s s median (%s-%s). That is the wait for the first probe after\n"+
				"    /sick (0-%s, not observable from outside), %d more failing probes %s apart, and tend's processing: first failing probe\n"+
				"    -> out of rotation = %s + processing, and processing <= %s ms (the smallest (unready - %s) of the trials).\n",
				p.name, harness.Secs(un.Median), harness.Secs(un.Min), harness.Secs(un.Max), checkInterval, failureThreshold-1, checkInterval,
				detect, harness.Ms(un.Min-detect), detect)
		case p.project != "" && un.N > 0:
			fmt.Printf("  %s: POST /sick -> unready in tend's journal %s s median (%s-%s); first failing check (engine's health log)\n"+
				"    -> unready %s s median, of which -> the engine's unhealthy %s s.\n",
				p.name, harness.Secs(un.Median), harness.Secs(un.Min), harness.Secs(un.Max),
				secsDiff(o, msFail, msUnready), secsDiff(o, msFail, msUnhealthy))
		case strings.HasPrefix(p.key, "swarm"):
			fmt.Printf("  %s: not observable here: the task would leave the service's DNS round robin (dnsrr; no VIP without IPVS);\n"+
				"    first failing check -> the engine's unhealthy %s s median, -> its container stopped %s s.\n",
				p.name, secsDiff(o, msFail, msUnhealthy), secsDiff(o, msFail, msStopped))
		case p.key == "docker":
			fmt.Printf("  %s: no rotation to leave; first failing check -> the engine's unhealthy %s s median, and nothing after.\n",
				p.name, secsDiff(o, msFail, msUnhealthy))
		}
	}
}

// between summarizes to - from over the trials that have both milestones.
func between(o outcome, from, to string) harness.Summary {
	var ds []time.Duration
	for _, t := range o.trials {
		a, okA := t.At[from]
		b, okB := t.At[to]
		if okA && okB {
			ds = append(ds, b-a)
		}
	}
	return harness.Summarize(ds)
}

// secsDiff is the median of to - from over the trials, or "n/a".
func secsDiff(o outcome, from, to string) string {
	s := between(o, from, to)
	if s.N == 0 {
		return "n/a"
	}
	return harness.Secs(s.Median)
}

// stepKeys are the milestones that mark a step of the work: tend's replace and takeover
// are left out, as the journal stamps them after the action (create and start; stop and
// removal) completed, so they would split nothing.
var stepKeys = []string{msFail, msUnhealthy, msUnready, msCreated, msStarted, msAnswers, msHealthy, msKilled, msStopped, msRemoved}

// steps says where a peer's time goes: its milestones in the order of their medians, each
// with the median over the trials of the time since the one before.
func steps(o outcome) string {
	var keys []string
	for _, k := range stepKeys {
		if o.at[k].N > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(o.at[a].Median, o.at[b].Median) })
	var parts []string
	for i, k := range keys {
		if i == 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", label(k), o.at[k].Median.Seconds()))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s +%.2f", label(k), between(o, keys[i-1], k).Median.Seconds()))
	}
	return strings.Join(parts, ", ")
}

func label(key string) string {
	for _, m := range milestones {
		if m.key == key {
			return m.label
		}
	}
	return key
}

func goalRows(peers []*peer, outs map[string]outcome) [][]string {
	rows := [][]string{{"ratio", "value", "goal", "verdict"}}
	name := func(key string) string {
		for _, p := range peers {
			if p.key == key {
				return p.name
			}
		}
		return key
	}
	for _, g := range []struct {
		a, b string
		goal float64 // 0: for information
	}{
		{"tend", "swarm-0s", 0.6},
		{"tend-hc", "swarm-0s", 0.6},
		{"tend", "swarm", 0},
		{"tend-hc", "swarm", 0},
	} {
		a, okA := outs[g.a]
		b, okB := outs[g.b]
		if !okA || !okB {
			continue
		}
		r, v := harness.Ratio(a.heal, b.heal, g.goal)
		if r != "n/a" { // three decimals: 0.601x must not read as 0.60x next to a goal of 0.60x
			r = fmt.Sprintf("%.3fx", a.heal.Median.Seconds()/b.heal.Median.Seconds())
		}
		goal := fmt.Sprintf("<= %.2fx", g.goal)
		if g.goal == 0 {
			goal = "-"
			if v != "not measured" {
				v = "(for information)"
			}
		}
		rows = append(rows, []string{name(g.a) + " / " + name(g.b), r, goal, v})
	}
	return rows
}
