package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// killTimes are when a run kills a replica: half an interval in, then every interval,
// while the run lasts.
func killTimes(every, length time.Duration) []time.Duration {
	var out []time.Duration
	for at := every / 2; at < length; at += every {
		out = append(out, at)
	}
	return out
}

// victims picks replicas to kill from a seed. Each kill draws an order of all the
// replicas, whichever run, and hits the first of them that is running: so two runs of a
// round kill the same replica whenever it is running in both, and one run's restarts
// (a replica not running in one run and running in the other) change only that kill,
// not the draws of the kills after it.
type victims struct {
	rng   *rand.Rand
	names []string // every replica, sorted
}

func newVictims(seed uint64, round int, names []string) victims {
	s := slices.Clone(names)
	slices.Sort(s)
	return victims{rand.New(rand.NewPCG(seed, uint64(round))), s}
}

// pick chooses a running replica (running holds their names), or "" when none runs.
func (v victims) pick(running func(string) bool) string {
	for _, i := range v.rng.Perm(len(v.names)) {
		if running(v.names[i]) {
			return v.names[i]
		}
	}
	return ""
}

// killRecord is one kill of a run: when it was sent and how long the engine took to
// carry it out, and whom it hit.
type killRecord struct {
	At     time.Duration `json:"at_ns"`
	Took   time.Duration `json:"took_ns"`
	Victim string        `json:"victim"` // "web-2"; "" when no replica was running
	Err    string        `json:"error,omitempty"`
}

// span is from sending the kill to the engine's answer: the replica died within it.
func (k killRecord) span() harness.Span { return harness.Span{From: k.At, To: k.At + k.Took} }

func killsLine(ks []killRecord) string {
	var parts []string
	for _, k := range ks {
		v := k.Victim
		if v == "" {
			v = "none running"
		}
		s := fmt.Sprintf("%s@%.2fs", v, k.At.Seconds())
		if k.Err != "" {
			s += " (failed: " + k.Err + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// killer kills a running replica of the project at each of times after start, chosen by
// v, until ctx ends.
func killer(ctx context.Context, p *harness.Project, times []time.Duration, v victims, start time.Time) []killRecord {
	var out []killRecord
	for _, at := range times {
		select {
		case <-time.After(time.Until(start.Add(at))):
		case <-ctx.Done():
			return out
		}
		k := killRecord{At: time.Since(start)}
		running, err := p.Running(ctx)
		if err != nil {
			k.Err = err.Error()
			out = append(out, k)
			continue
		}
		k.Victim = v.pick(func(name string) bool { return running[name] != "" })
		if k.Victim != "" {
			if err := p.D.Kill(ctx, running[k.Victim]); err != nil {
				k.Err = err.Error()
			}
		}
		k.Took = time.Since(start) - k.At
		out = append(out, k)
	}
	return out
}
