package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/errs"
)

// Kind is a fault `tend chaos` can inject.
type Kind string

const (
	Kill  Kind = "kill"  // SIGKILL the replica's container (docker kill)
	Stop  Kind = "stop"  // stop it with the engine's grace (docker stop)
	Rm    Kind = "rm"    // remove it (docker rm -f)
	Pause Kind = "pause" // freeze it through the engine (docker pause)
	// Sick stops (SIGSTOP) its processes behind the engine's back: the engine
	// says running, nothing answers, so its liveness fails without the app's cooperation.
	Sick Kind = "sick"
	Slow Kind = "slow" // throttle its CPU through the engine's update API
	Disk Kind = "disk" // fill a file in its writable layer
	// NodeKill and NodeCut (power off a node, cut its link) need cluster mode.
	NodeKill Kind = "node-kill"
	NodeCut  Kind = "node-cut"
)

// Kinds are the faults of one host, in the order `all` mixes them.
var Kinds = []Kind{Kill, Stop, Rm, Pause, Sick, Slow, Disk}

// Downs says whether a fault takes its replica out by itself. Slow and disk
// need not: they are measured as down only if the replica is seen not ready.
func (k Kind) Downs() bool { return k != Slow && k != Disk }

// ParseKinds reads ACTION: one kind, several separated by commas (mixed in
// turn on a schedule), or "all" for every kind of one host.
func ParseKinds(s string) ([]Kind, error) {
	if s == "all" {
		return slices.Clone(Kinds), nil
	}
	var out []Kind
	for f := range strings.SplitSeq(s, ",") {
		k := Kind(strings.TrimSpace(f))
		switch {
		case k == NodeKill || k == NodeCut:
			return nil, errs.E(errs.Invalid, "chaos: %s needs cluster mode, and tend runs on one host (there is no cluster mode yet)", k)
		case !slices.Contains(Kinds, k):
			return nil, errs.E(errs.Invalid, "chaos: unknown action %q (want %s, all, or several separated by commas)", k, kindList())
		}
		out = append(out, k)
	}
	return out, nil
}

func kindList() string {
	var s []string
	for _, k := range Kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// Schedule is when faults are due: once at the start when Every is 0, else
// every Every from the start for For (until stopped when For is 0).
type Schedule struct {
	Every, For time.Duration
}

// Due is when fault n (from 0) is due after start, and false when the schedule has no fault n.
func (s Schedule) Due(start time.Time, n int) (time.Time, bool) {
	if n > 0 && s.Every <= 0 {
		return time.Time{}, false
	}
	at := time.Duration(n) * s.Every
	if s.For > 0 && n > 0 && at >= s.For {
		return time.Time{}, false
	}
	return start.Add(at), true
}

// Replica is what chaos knows of one replica, from tend's status.
type Replica struct {
	Service   string
	Slot      int
	Container string // name; "" while the slot has none
	ID        string
	Running   bool
	Ready     bool
	Failed    bool // tend will not bring it up without a person
	Job       bool // a one-shot job that completed: never a target
	Restarts  int
	StartedAt time.Time
}

func (r Replica) key() string { return fmt.Sprintf("%s/%d", r.Service, r.Slot) }

// Pick chooses the replica fault n strikes: among the running, ready
// replicas (of service, when it is set), in a fixed order, the one at roll
// modulo their number. The caller rolls the dice; false: none to strike.
func Pick(reps []Replica, service string, roll uint64) (Replica, bool) {
	var cands []Replica
	for _, r := range reps {
		if r.Running && r.Ready && !r.Job && r.ID != "" && (service == "" || r.Service == service) {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return Replica{}, false
	}
	slices.SortFunc(cands, func(a, b Replica) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), cmp.Compare(a.Slot, b.Slot))
	})
	return cands[roll%uint64(len(cands))], true
}
