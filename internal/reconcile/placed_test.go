package reconcile_test

import (
	"slices"
	"testing"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
)

// In a cluster a host runs the slots placed on it only: a container of a
// slot placed on another node goes, an unplaced slot is not created, and a
// slot of this host's that has no container gets one.
func TestPlacedElsewhereIsNotRunHere(t *testing.T) {
	web := service("web", replicas(4))
	obs := reconcile.Observed{
		Containers: []runtime.Container{ctr(web, 1, runtime.Running, id("w1")), ctr(web, 2, runtime.Running, id("w2"))},
		Placed:     map[reconcile.SlotKey]string{key("web", 1): "a", key("web", 2): "b", key("web", 3): "a"},
		Node:       "a",
	}
	r := reconcile.Plan(project(web), obs, at(0))
	got := actions(r)
	want := []string{"remove web/2 w2 placed-elsewhere", "create web/3 new"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("actions %v, want %v", got, want)
	}
	for k := range r.History {
		if k.Slot == 2 || k.Slot == 4 {
			t.Errorf("memory of slot %d written on a host that does not run it", k.Slot)
		}
	}
	// A single host (Placed nil) runs every slot.
	obs.Placed = nil
	if got := actions(reconcile.Plan(project(web), obs, at(0))); len(got) != 2 {
		t.Errorf("single host: %v, want two creates", got)
	}
}

// A slot that comes to this node from one that went down is created as moved,
// not as a container removed outside tend.
func TestMovedSlotIsCreatedAsMoved(t *testing.T) {
	web := service("web", replicas(1))
	obs := reconcile.Observed{
		History: map[reconcile.SlotKey]reconcile.History{key("web", 1): {Container: "abc123", Node: "b"}},
		Placed:  map[reconcile.SlotKey]string{key("web", 1): "a"},
		Node:    "a",
	}
	r := reconcile.Plan(project(web), obs, at(0))
	if got := actions(r); len(got) != 1 || got[0] != "create web/1 moved" {
		t.Errorf("actions %v", got)
	}
}
