package nodes

import (
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	j := NewJudge(1500*time.Millisecond, t0)
	for _, c := range []struct {
		name string
		beat func()
		now  int
		want State
	}{
		{"a new judge gives an unseen node a whole TTL", nil, 1499, Ready},
		{"and then calls it down", nil, 1500, Down},
		{"a beat brings it back", func() { j.Beat("a", 1, at(1600)) }, 1600, Ready},
		{"a repeated counter is no beat", func() { j.Beat("a", 1, at(2500)) }, 3100, Down},
		{"a new counter is", func() { j.Beat("a", 2, at(3200)) }, 4699, Ready},
		{"TTL after the last beat it is down", nil, 4700, Down},
	} {
		if c.beat != nil {
			c.beat()
		}
		if got := j.State("a", at(c.now)); got != c.want {
			t.Errorf("%s: state at %d ms = %s, want %s", c.name, c.now, got, c.want)
		}
	}
	j.Forget("a")
	if got := j.State("a", at(4800)); got != Down {
		t.Errorf("a forgotten node is %s", got)
	}
}

func TestSortedPutsManagersFirst(t *testing.T) {
	got := Sorted([]Status{{Node: Node{Name: "b", Role: Worker}}, {Node: Node{Name: "c", Role: Manager}}, {Node: Node{Name: "a", Role: Worker}}})
	if got[0].Name != "c" || got[1].Name != "a" || got[2].Name != "b" {
		t.Errorf("order %v", got)
	}
}

func TestPressureHasHysteresis(t *testing.T) {
	p := DefaultPressure
	for _, c := range []struct {
		disk, mem float64
		was, want bool
	}{
		{0.50, 0.50, false, false},
		{0.09, 0.50, false, true},  // disk below 10 %
		{0.50, 0.04, false, true},  // memory below 5 %
		{0.12, 0.50, true, true},   // above 10 %, not above 15 %: still under
		{0.16, 0.50, true, false},  // past the hysteresis
		{0.12, 0.50, false, false}, // the same 12 % does not enter
		{-1, -1, false, false},     // unknown figures are no pressure
	} {
		if got, why := p.Under(Figures{DiskFree: c.disk, MemAvailable: c.mem}, c.was); got != c.want {
			t.Errorf("disk %.2f mem %.2f was %v: under %v (%s), want %v", c.disk, c.mem, c.was, got, why, c.want)
		}
	}
}
