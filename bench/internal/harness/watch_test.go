package harness

import (
	"reflect"
	"testing"
	"time"
)

func TestIntersect(t *testing.T) {
	ms := func(a, b int) Span {
		return Span{time.Duration(a) * time.Millisecond, time.Duration(b) * time.Millisecond}
	}
	a := []Span{ms(0, 100), ms(200, 300), ms(400, 500)}
	b := []Span{ms(50, 250), ms(450, 460)}
	got := Intersect(a, b)
	want := []Span{ms(50, 100), ms(200, 250), ms(450, 460)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Intersect = %v, want %v", got, want)
	}
	if Total(got) != 110*time.Millisecond {
		t.Errorf("Total = %v", Total(got))
	}
	if !Overlaps(got, ms(90, 95)) || Overlaps(got, ms(100, 200)) {
		t.Error("Overlaps")
	}
}

func TestAllDownNeedsEveryAddressDown(t *testing.T) {
	w := NewWatcher([]string{"a", "b", "c"}, time.Now(), time.Millisecond)
	w.down["a"] = []Span{{0, 100}}
	w.down["b"] = []Span{{50, 150}}
	if got := w.AllDown(); len(got) != 0 {
		t.Errorf("AllDown with c never down = %v, want none", got)
	}
	w.down["c"] = []Span{{60, 70}}
	if got := w.AllDown(); !reflect.DeepEqual(got, []Span{{60, 70}}) {
		t.Errorf("AllDown = %v, want [{60 70}]", got)
	}
}

func TestLatenciesOf(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := LatenciesOf(ds)
	if got != (Latencies{51 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}) {
		t.Errorf("LatenciesOf = %+v", got)
	}
	if LatenciesOf(nil) != (Latencies{}) {
		t.Error("empty")
	}
}
