package chaos

import (
	"slices"
	"time"
)

// Report is what `tend chaos` prints at the end (--json: this, whole).
type Report struct {
	Project string    `json:"project"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Faults  []Fault   `json:"faults"`
	// Kinds sums up recovery per kind of fault, over the faults that took
	// their replica out; faults that did not recover are counted apart.
	Kinds []KindStats `json:"kinds"`
	// Other are the journal entries of the run that no fault claims.
	Other []Entry `json:"other"`
	After State   `json:"after"`
	// Settled is how long after the last fault the stack was first seen
	// converged; -1 if it was not by the end.
	Settled time.Duration `json:"settled_ns"`
}

// KindStats are the recoveries of one kind of fault.
type KindStats struct {
	Kind         Kind          `json:"kind"`
	Faults       int           `json:"faults"`
	Failed       int           `json:"failed"`        // could not be injected
	Down         int           `json:"down"`          // took the replica out
	NotRecovered int           `json:"not_recovered"` // out, and not ready again by the end
	P50          time.Duration `json:"p50_ns"`
	P99          time.Duration `json:"p99_ns"`
	Max          time.Duration `json:"max_ns"`
}

// Report builds the report of a run that ended at end with the stack in
// state after; settled is when it was first seen converged after the last
// fault (zero: not seen).
func (b *Book) Report(project string, start, end time.Time, after State, settled time.Time) Report {
	r := Report{Project: project, Started: start, Ended: end, Faults: b.Faults, Other: b.Other, After: after, Settled: -1}
	if r.Faults == nil {
		r.Faults = []Fault{}
	}
	if r.Other == nil {
		r.Other = []Entry{}
	}
	for i := range r.Faults {
		if r.Faults[i].Entries == nil {
			r.Faults[i].Entries = []Entry{}
		}
	}
	if !settled.IsZero() {
		last := start
		for _, f := range b.Faults {
			last = f.At
		}
		r.Settled = max(settled.Sub(last), 0)
	}
	byKind := map[Kind]*KindStats{}
	var order []Kind
	took := map[Kind][]time.Duration{}
	for _, f := range b.Faults {
		ks := byKind[f.Kind]
		if ks == nil {
			ks = &KindStats{Kind: f.Kind}
			byKind[f.Kind] = ks
			order = append(order, f.Kind)
		}
		ks.Faults++
		switch d := f.Recovery(); {
		case f.Error != "":
			ks.Failed++
		case d < 0:
			ks.Down++
			ks.NotRecovered++
		case f.Down:
			ks.Down++
			took[f.Kind] = append(took[f.Kind], d)
		}
	}
	for _, k := range order {
		ks := byKind[k]
		ks.P50, ks.P99, ks.Max = quantiles(took[k])
		r.Kinds = append(r.Kinds, *ks)
	}
	if r.Kinds == nil {
		r.Kinds = []KindStats{}
	}
	return r
}

// OK: every fault that took a replica out was recovered and the stack converged.
func (r Report) OK() bool {
	for _, k := range r.Kinds {
		if k.NotRecovered > 0 {
			return false
		}
	}
	return r.After.Converged
}

// quantiles are the nearest-rank p50 and p99 and the max of ds.
func quantiles(ds []time.Duration) (p50, p99, maxD time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return rank(0.5), rank(0.99), s[len(s)-1]
}
