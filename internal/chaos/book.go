package chaos

import (
	"fmt"
	"slices"
	"time"
)

// Entry is a journal entry, as chaos reads it.
type Entry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Service string    `json:"service,omitempty"`
	Slot    int       `json:"slot,omitempty"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason,omitempty"`
	Message string    `json:"message,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// Fault is one injected fault and what followed it.
type Fault struct {
	N         int       `json:"n"` // from 1, in the order injected
	Kind      Kind      `json:"kind"`
	Service   string    `json:"service"`
	Slot      int       `json:"slot"`
	Container string    `json:"container"`
	At        time.Time `json:"at"`
	// Error: the fault could not be injected (nothing followed it).
	Error string `json:"error,omitempty"`
	// Entries are what tend journaled about the struck slot from the fault
	// on, until the next fault on that slot; and entries of the service or
	// of other services while the fault was not yet over (a dependent
	// restarted, a breaker opened).
	Entries []Entry `json:"entries"`
	// Down: the replica was seen out (not ready, or made anew, or tend
	// acted on it). A slow or disk fault that never took it out stays false.
	Down bool `json:"down"`
	// Recovered is when the slot was first seen ready again after being
	// down; zero if it was not within the run.
	Recovered time.Time `json:"recovered,omitzero"`

	target Replica // the replica as it was when struck
}

// Recovery is the time from the fault to ready again; 0 for a fault that
// never took the replica out; -1 while it is not ready again.
func (f Fault) Recovery() time.Duration {
	switch {
	case f.Error != "" || !f.Down && !f.Recovered.IsZero():
		return 0
	case f.Recovered.IsZero():
		return -1
	}
	return f.Recovered.Sub(f.At)
}

// Over: nothing more is expected of tend for this fault.
func (f Fault) Over() bool { return f.Error != "" || !f.Recovered.IsZero() }

// SideWindow is how long after its recovery a fault still claims entries
// about other slots and services (a dependent restarted late, a breaker
// that closes once the replica answers again).
const SideWindow = 10 * time.Second

// Book is the ledger of one chaos run. The zero value is ready to use.
type Book struct {
	Faults []Fault
	// Other are journal entries no fault claims: tend acting on its own
	// (an autoscaler's step, say), or something outside the run.
	Other []Entry
}

// Inject records a fault against target at time at; err is why it could
// not be injected, or "".
func (b *Book) Inject(k Kind, target Replica, at time.Time, err string) *Fault {
	b.Faults = append(b.Faults, Fault{N: len(b.Faults) + 1, Kind: k, Service: target.Service, Slot: target.Slot,
		Container: target.Container, At: at, Error: err, target: target})
	return &b.Faults[len(b.Faults)-1]
}

// Journal assigns new journal entries to the faults they answer.
func (b *Book) Journal(entries []Entry) {
	for _, e := range entries {
		if i := b.claim(e); i >= 0 {
			f := &b.Faults[i]
			f.Entries = append(f.Entries, e)
			if f.Error == "" && e.Service == f.Service && e.Slot == f.Slot && heals(e) {
				f.Down = true
			}
			continue
		}
		b.Other = append(b.Other, e)
	}
}

// claim is the fault an entry answers, or -1: the latest fault on its slot
// before it; for an entry about a whole service (slot 0, say its dependents
// restarted), the latest fault on that service still under way or just
// over; else the latest fault still under way or just over before it.
func (b *Book) claim(e Entry) int {
	for i := len(b.Faults) - 1; i >= 0; i-- {
		f := b.Faults[i]
		if f.Error == "" && f.Service == e.Service && f.Slot == e.Slot && e.Slot > 0 && !e.Time.Before(f.At) {
			return i
		}
	}
	recent := func(f Fault) bool {
		return f.Error == "" && !e.Time.Before(f.At) && (f.Recovered.IsZero() || !e.Time.After(f.Recovered.Add(SideWindow)))
	}
	if e.Slot == 0 {
		for i := len(b.Faults) - 1; i >= 0; i-- {
			if f := b.Faults[i]; f.Service == e.Service && recent(f) {
				return i
			}
		}
	}
	for i := len(b.Faults) - 1; i >= 0; i-- {
		if recent(b.Faults[i]) {
			return i
		}
	}
	return -1
}

// heals tells an entry of tend acting on a slot: not one that only notes
// how it is (unready, a check not believed, a standby started just in case).
func heals(e Entry) bool {
	switch e.Action {
	case "unready", "ready", "inconclusive", "log-match":
		return false
	case "replace", "remove":
		return e.Reason != "suspect" && e.Reason != "recovered"
	}
	return true
}

// Observe records a poll of tend's replicas made at now.
func (b *Book) Observe(now time.Time, reps []Replica) {
	bySlot := map[string]Replica{}
	for _, r := range reps {
		bySlot[r.key()] = r
	}
	for i := range b.Faults {
		f := &b.Faults[i]
		if f.Over() || now.Before(f.At) {
			continue
		}
		r, ok := bySlot[f.target.key()]
		up := ok && r.Running && r.Ready
		if !up || changed(f.target, r) {
			f.Down = true
		}
		switch {
		case !up:
		case f.Down:
			f.Recovered = now
		case !f.Kind.Downs():
			f.Recovered = now // slow, disk: it kept serving; Down stays false
		}
	}
}

// changed tells a replica made anew or restarted since it was struck.
func changed(was, now Replica) bool {
	return was.ID != now.ID || now.Restarts > was.Restarts || !was.StartedAt.Equal(now.StartedAt)
}

// Unexplained are the faults that took their replica out and whose slot has
// no entry of tend acting on it yet: tend journals an action once it
// returned, which can be a moment after the replica is seen ready again.
func (b *Book) Unexplained() int {
	n := 0
	for _, f := range b.Faults {
		if f.Error != "" || !f.Down || f.Recovered.IsZero() {
			continue
		}
		if !slices.ContainsFunc(f.Entries, func(e Entry) bool { return e.Service == f.Service && e.Slot == f.Slot && heals(e) }) {
			n++
		}
	}
	return n
}

// Pending are the faults not over yet.
func (b *Book) Pending() int {
	n := 0
	for _, f := range b.Faults {
		if !f.Over() {
			n++
		}
	}
	return n
}

// Container is one container of the project as the engine lists it.
type Container struct {
	Name    string
	Service string
	Slot    int
	Running bool
}

// State is the stack's state as chaos judges it.
type State struct {
	Converged bool `json:"converged"`
	// Duplicates are slots held by more than one container.
	Duplicates []string `json:"duplicates"`
	// Orphans are containers of the project that hold no slot tend keeps.
	Orphans []string `json:"orphans"`
	// NotReady are slots that are not running and ready (nor a completed job).
	NotReady []string `json:"not_ready"`
}

// Assess judges the stack from tend's replicas and the engine's containers.
func Assess(reps []Replica, cs []Container) State {
	st := State{Duplicates: []string{}, Orphans: []string{}, NotReady: []string{}}
	slots := map[string]bool{}
	for _, r := range reps {
		slots[r.key()] = true
		if r.Failed || !r.Job && !(r.Running && r.Ready) {
			st.NotReady = append(st.NotReady, r.key())
		}
	}
	held := map[string][]string{}
	for _, c := range cs {
		k := fmt.Sprintf("%s/%d", c.Service, c.Slot)
		if !slots[k] {
			st.Orphans = append(st.Orphans, c.Name)
			continue
		}
		held[k] = append(held[k], c.Name)
	}
	for k, names := range held {
		if len(names) > 1 {
			slices.Sort(names)
			st.Duplicates = append(st.Duplicates, fmt.Sprintf("%s: %v", k, names))
		}
	}
	slices.Sort(st.Duplicates)
	slices.Sort(st.Orphans)
	slices.Sort(st.NotReady)
	st.Converged = len(st.Duplicates)+len(st.Orphans)+len(st.NotReady) == 0
	return st
}
