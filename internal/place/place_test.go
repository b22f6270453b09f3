package place

import (
	"testing"
)

func slots(project, service string, n int) []Slot {
	var out []Slot
	for i := 1; i <= n; i++ {
		out = append(out, Slot{project, service, i})
	}
	return out
}

func TestSpreadsAServiceAcrossNodes(t *testing.T) {
	nodes := []Node{{Name: "a", Ready: true}, {Name: "b", Ready: true}, {Name: "c", Ready: true}}
	got, moves := Plan(append(slots("p", "web", 3), slots("p", "db", 1)...), nodes, nil)
	per := map[string]int{}
	for s, n := range got {
		if s.Service == "web" {
			per[n]++
		}
	}
	if per["a"] != 1 || per["b"] != 1 || per["c"] != 1 {
		t.Errorf("web's replicas by node %v, want one on each", per)
	}
	if got[Slot{"p", "db", 1}] == "" || len(moves) != 4 {
		t.Errorf("db at %q; moves %v", got[Slot{"p", "db", 1}], moves)
	}
	// db's replica goes to a node with the fewest replicas in all: web spread
	// one on each, so the first by name.
	if got[Slot{"p", "db", 1}] != "a" {
		t.Errorf("db on %s, want a", got[Slot{"p", "db", 1}])
	}
}

func TestANodeDownMovesOnlyItsSlots(t *testing.T) {
	cur := map[Slot]string{{"p", "web", 1}: "a", {"p", "web", 2}: "b", {"p", "web", 3}: "c"}
	got, moves := Plan(slots("p", "web", 3), []Node{{Name: "a", Ready: true}, {Name: "b", Ready: false}, {Name: "c", Ready: true}}, cur)
	if got[Slot{"p", "web", 1}] != "a" || got[Slot{"p", "web", 3}] != "c" {
		t.Errorf("slots on ready nodes moved: %v", got)
	}
	if to := got[Slot{"p", "web", 2}]; to != "a" && to != "c" {
		t.Errorf("web-2 to %q", to)
	}
	if len(moves) != 1 || moves[0].From != "b" || moves[0].Reason != "node-down" {
		t.Errorf("moves %+v", moves)
	}
	// b comes back: nothing moves to it.
	again, moves := Plan(slots("p", "web", 3), []Node{{Name: "a", Ready: true}, {Name: "b", Ready: true}, {Name: "c", Ready: true}}, got)
	if len(moves) != 0 || again[Slot{"p", "web", 2}] != got[Slot{"p", "web", 2}] {
		t.Errorf("a node's return moved %+v", moves)
	}
}

func TestNoReadyNodeLeavesSlotsUnplaced(t *testing.T) {
	cur := map[Slot]string{{"p", "web", 1}: "a"}
	got, moves := Plan(slots("p", "web", 2), []Node{{Name: "a", Ready: false}}, cur)
	if got[Slot{"p", "web", 1}] != "" || got[Slot{"p", "web", 2}] != "" {
		t.Errorf("placed on a down node: %v", got)
	}
	if len(moves) != 1 || moves[0].To != "" || moves[0].From != "a" {
		t.Errorf("moves %+v (a slot never placed and still unplaced is no move)", moves)
	}
}

func TestScaledInSlotsAreDropped(t *testing.T) {
	cur := map[Slot]string{{"p", "web", 1}: "a", {"p", "web", 2}: "a"}
	got, _ := Plan(slots("p", "web", 1), []Node{{Name: "a", Ready: true}}, cur)
	if _, ok := got[Slot{"p", "web", 2}]; ok || len(got) != 1 {
		t.Errorf("got %v", got)
	}
}

func TestCordonAndDrain(t *testing.T) {
	cur := map[Slot]string{{"p", "web", 1}: "a", {"p", "web", 2}: "b"}
	nodes := []Node{{Name: "a", Ready: true, Cordoned: true}, {Name: "b", Ready: true}, {Name: "c", Ready: true}}
	got, moves := Plan(slots("p", "web", 3), nodes, cur)
	if got[Slot{"p", "web", 1}] != "a" || got[Slot{"p", "web", 3}] != "c" || len(moves) != 1 {
		t.Errorf("cordoned a: %v %+v (it keeps web-1 and takes nothing new)", got, moves)
	}
	nodes[1].Draining = true
	got, moves = Plan(slots("p", "web", 3), nodes, got)
	if got[Slot{"p", "web", 2}] != "c" || len(moves) != 1 || moves[0].Reason != "drain" {
		t.Errorf("draining b: %v %+v", got, moves)
	}
}
