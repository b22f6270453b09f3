package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// measure reads a trial's figures from its requests (offsets from start) and
// the scale entries of the journal.
func measure(c config, name string, rs []harness.Request, es []entry, start time.Time, stepAt time.Duration) trial {
	stepEnd := stepAt + c.step
	end := stepEnd + c.after
	tr := trial{underAt: -1, backToMin: -1, most: c.min, requests: len(rs)}
	tr.p95Before = p95(rs, 2*time.Second, stepAt)
	tr.p95During = p95(rs, stepAt, stepEnd)
	tr.p95Steady = p95(rs, stepEnd-10*time.Second, stepEnd)
	tr.p95After = p95(rs, end-10*time.Second, end)
	tr.failedOut = failed(rs, stepAt, stepEnd)
	tr.failedIn = failed(rs, stepEnd, end+time.Minute)
	over := false
	for s := stepAt; s+time.Second <= stepEnd; s += time.Second {
		p := p95(rs, s, s+time.Second)
		if p > c.target {
			over = true
		} else if over && p > 0 {
			tr.underAt = s + time.Second - stepAt
			break
		}
	}
	// Replicas over time: the count each scale entry set, from its message "a -> b: ...".
	count, last := c.min, time.Duration(0)
	for _, e := range es {
		at := e.Time.Sub(start)
		var from, to int
		if _, err := fmt.Sscanf(e.Message, "%d -> %d", &from, &to); err != nil {
			continue
		}
		tr.extraReplicaSeconds += float64(count-c.min) * (at - last).Seconds()
		count, last = to, at
		tr.most = max(tr.most, to)
		tr.timeline = append(tr.timeline, point{at - stepAt, to, e.Reason})
		if e.Reason == "no-effect" {
			tr.noEffect = e.Message
		}
		if to == c.min && at > stepEnd && tr.backToMin < 0 {
			tr.backToMin = at - stepEnd
		}
	}
	tr.extraReplicaSeconds += float64(count-c.min) * (end - last).Seconds()
	if count == c.min && tr.backToMin < 0 && last <= stepEnd {
		tr.backToMin = 0 // already at min when the load ended
	}
	return tr
}

func (t trial) print(c config, name string, n int) {
	var tl []string
	for _, p := range t.timeline {
		tl = append(tl, fmt.Sprintf("%+.1fs→%d (%s)", p.at.Seconds(), p.replicas, p.reason))
	}
	fmt.Printf("%s trial %d: %d requests; p95 before %s, during %s (last 10 s %s), after %s; under target %s after the step; back to min %s after it; failed %d during scale-out, %d during scale-in; most replicas %d; replica-seconds above min %.0f\n  replicas: %s\n",
		name, n, t.requests, ms(t.p95Before), ms(t.p95During), ms(t.p95Steady), ms(t.p95After), secs(t.underAt), secs(t.backToMin),
		t.failedOut, t.failedIn, t.most, t.extraReplicaSeconds, strings.Join(tl, ", "))
	if t.noEffect != "" {
		fmt.Printf("  no-effect: %s\n", t.noEffect)
	}
}

func ms(d time.Duration) string { return harness.Ms(d) + " ms" }

func secs(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func summarize(c config, results map[string][]trial) {
	med := func(ts []trial, f func(trial) time.Duration) time.Duration {
		var ds []time.Duration
		for _, t := range ts {
			ds = append(ds, f(t))
		}
		return harness.Summarize(ds).Median
	}
	q, f := results["queue"], results["fixed"]
	sumFailed := func(ts []trial) (out, in int) {
		for _, t := range ts {
			out, in = out+t.failedOut, in+t.failedIn
		}
		return
	}
	qo, qi := sumFailed(q)
	fo, fi := sumFailed(f)
	most := func(ts []trial) int {
		m := 0
		for _, t := range ts {
			m = max(m, t.most)
		}
		return m
	}
	rsec := med(f, func(t trial) time.Duration { return time.Duration(t.extraReplicaSeconds * float64(time.Second)) })
	hpaFixed := float64(c.maxReplicas-c.min) * (c.step + c.after).Seconds()
	fmt.Println()
	fmt.Println("medians over trials; HPA is Kubernetes' documented behaviour (not run here: no cluster); Compose and Swarm cannot autoscale")
	fmt.Print(harness.Table([][]string{
		{"figure", "tend", "HPA (documented)", "goal"},
		{"load step -> p95 under target (queue)", secs(med(q, func(t trial) time.Duration { return t.underAt })), ">= 15 s sync + metrics lag", "<= 10 s"},
		{"p95 before / during / last 10 s of step / after (queue)", fmt.Sprintf("%s / %s / %s / %s", ms(med(q, func(t trial) time.Duration { return t.p95Before })),
			ms(med(q, func(t trial) time.Duration { return t.p95During })), ms(med(q, func(t trial) time.Duration { return t.p95Steady })),
			ms(med(q, func(t trial) time.Duration { return t.p95After }))), "-", "under target after"},
		{"load end -> back to min (queue)", secs(med(q, func(t trial) time.Duration { return t.backToMin })), ">= 300 s stabilization", "<= 60 s"},
		{"failed requests, scale-out / scale-in (queue, all trials)", fmt.Sprintf("%d / %d", qo, qi), "-", "0 / 0"},
		{"most replicas (fixed)", fmt.Sprint(most(f)), fmt.Sprintf("%d (max, and stays)", c.maxReplicas), fmt.Sprintf("<= one step above min")},
		{"replica-seconds above min (fixed)", fmt.Sprintf("%.0f", rsec.Seconds()), fmt.Sprintf("%.0f", hpaFixed), "small"},
		{"failed requests (fixed, all trials)", fmt.Sprintf("%d / %d", fo, fi), "-", "0 / 0"},
	}))
}
