package notify

import (
	"cmp"
	"slices"
	"time"

	"github.com/tend-sh/tend/internal/store"
)

// Grouping says how entries are gathered into deliveries. Zero values are defaults.
type Grouping struct {
	// Wait is how long a new group collects entries before it is sent (5s).
	Wait time.Duration
	// Interval is the least time between two deliveries of one group (1m):
	// a storm of restarts is one POST per Interval, counted.
	Interval time.Duration
	// MaxEntries is how many entries one payload carries (20); the rest are counted in Omitted.
	MaxEntries int
}

func (g Grouping) withDefaults() Grouping {
	if g.Wait <= 0 {
		g.Wait = 5 * time.Second
	}
	if g.Interval <= 0 {
		g.Interval = time.Minute
	}
	if g.MaxEntries <= 0 {
		g.MaxEntries = 20
	}
	return g
}

// Payload is one delivery: a group of entries of one service (or of a
// project's or the daemon's own entries, with Service empty).
type Payload struct {
	Version int            `json:"version"` // 1
	Project string         `json:"project"`
	Service string         `json:"service"`
	Count   int            `json:"count"` // entries in the group, Omitted included
	First   time.Time      `json:"first"` // the first entry's time
	Last    time.Time      `json:"last"`
	Actions map[string]int `json:"actions"` // entries by action
	Entries []store.Entry  `json:"entries"` // the first MaxEntries entries
	Omitted int            `json:"omitted,omitempty"`
	Dropped int            `json:"dropped,omitempty"` // payloads dropped since the last delivery
}

type groupKey struct{ project, service string }

// group is one service's entries not yet sent, and when it last was.
type group struct {
	pending  *Payload // nil: nothing waits
	opened   time.Time
	lastSent time.Time
}

// batcher gathers entries into groups and says which are due.
// It reads no clock: every call takes now.
type batcher struct {
	g      Grouping
	groups map[groupKey]*group
}

func newBatcher(g Grouping) *batcher {
	return &batcher{g: g.withDefaults(), groups: map[groupKey]*group{}}
}

// add puts e in its service's group.
func (b *batcher) add(e store.Entry, now time.Time) {
	k := groupKey{e.Project, e.Service}
	gr := b.groups[k]
	if gr == nil {
		gr = &group{}
		b.groups[k] = gr
	}
	if gr.pending == nil {
		gr.pending = &Payload{Version: 1, Project: e.Project, Service: e.Service, First: e.Time, Actions: map[string]int{}}
		gr.opened = now
	}
	p := gr.pending
	p.Count++
	p.Last = e.Time
	p.Actions[e.Action]++
	if len(p.Entries) < b.g.MaxEntries {
		p.Entries = append(p.Entries, e)
	} else {
		p.Omitted++
	}
}

// dueAt is when a group's pending entries are sent.
func (b *batcher) dueAt(gr *group) time.Time {
	at := gr.opened.Add(b.g.Wait)
	if !gr.lastSent.IsZero() {
		if next := gr.lastSent.Add(b.g.Interval); next.After(at) {
			at = next
		}
	}
	return at
}

// due takes the groups whose time has come, oldest entry first, and says
// when the next one will be (zero: none waits). Groups quiet for an Interval are forgotten.
func (b *batcher) due(now time.Time) ([]Payload, time.Time) {
	var out []Payload
	var next time.Time
	for k, gr := range b.groups {
		if gr.pending == nil {
			if now.Sub(gr.lastSent) >= b.g.Interval {
				delete(b.groups, k)
			}
			continue
		}
		at := b.dueAt(gr)
		if at.After(now) {
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		out = append(out, *gr.pending)
		gr.pending, gr.lastSent = nil, now
	}
	slices.SortFunc(out, func(a, b Payload) int { return cmp.Compare(a.Entries[0].Seq, b.Entries[0].Seq) })
	return out, next
}
