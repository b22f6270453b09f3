// Package place is the cluster's placement planner: which node runs each
// replica slot. It is pure: the leader feeds it the slots the projects ask
// for, the nodes and the assignments as stored, and writes back what it says.
//
// A slot stays where it is while its node is ready and not draining, so a node that comes back
// does not pull replicas to itself and nothing moves without cause. A slot
// whose node is down, or that has no node, goes to the ready node with the
// fewest replicas of its service, then the fewest replicas in all, then by
// name: a service's replicas spread across nodes before they share one.
package place

import (
	"cmp"
	"fmt"
	"slices"
)

// Slot is one replica slot of a service.
type Slot struct {
	Project string `json:"project"`
	Service string `json:"service"`
	Slot    int    `json:"slot"`
}

func (s Slot) String() string { return fmt.Sprintf("%s/%s/%d", s.Project, s.Service, s.Slot) }

// Node is a node as placement sees it.
type Node struct {
	Name  string
	Ready bool // judged ready by the leader; a down node gets nothing and keeps nothing
	// Cordoned: it keeps what it runs and takes nothing new. Draining: it
	// keeps nothing either; its slots move to other nodes.
	Cordoned, Draining bool
}

// Move is one change of assignment, with its cause, for the journal.
type Move struct {
	Slot     Slot
	From, To string // "" From: not placed before; "" To: fits nowhere
	Reason   string
}

// Plan returns the assignment of every slot in slots (to "" when no node is
// ready), and the moves from current. Slots of current not in slots are
// dropped: their service scaled in or went away.
func Plan(slots []Slot, nodes []Node, current map[Slot]string) (map[Slot]string, []Move) {
	keeps, takes := map[string]bool{}, map[string]bool{}
	draining := map[string]bool{}
	for _, n := range nodes {
		keeps[n.Name] = n.Ready && !n.Draining
		takes[n.Name] = n.Ready && !n.Draining && !n.Cordoned
		draining[n.Name] = n.Draining
	}
	next := map[Slot]string{}
	total := map[string]int{}
	perService := map[string]map[string]int{} // project/service -> node -> replicas
	count := func(s Slot, node string) {
		total[node]++
		key := s.Project + "/" + s.Service
		if perService[key] == nil {
			perService[key] = map[string]int{}
		}
		perService[key][node]++
	}
	ordered := slices.Clone(slots)
	slices.SortFunc(ordered, func(a, b Slot) int {
		return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Slot, b.Slot))
	})
	var homeless []Slot
	for _, s := range ordered {
		if n := current[s]; n != "" && keeps[n] {
			next[s] = n
			count(s, n)
		} else {
			homeless = append(homeless, s)
		}
	}
	var names []string
	for n, ok := range takes {
		if ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var moves []Move
	for _, s := range homeless {
		from := current[s]
		to := ""
		if len(names) > 0 {
			to = slices.MinFunc(names, func(a, b string) int {
				ps := perService[s.Project+"/"+s.Service]
				return cmp.Or(cmp.Compare(ps[a], ps[b]), cmp.Compare(total[a], total[b]), cmp.Compare(a, b))
			})
			count(s, to)
		}
		next[s] = to
		if from == to {
			continue // still nowhere
		}
		reason := "new"
		switch {
		case draining[from]:
			reason = "drain"
		case from != "":
			reason = "node-down"
		}
		moves = append(moves, Move{Slot: s, From: from, To: to, Reason: reason})
	}
	return next, moves
}
