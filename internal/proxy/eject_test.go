package proxy

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestCanEject(t *testing.T) {
	for _, tc := range []struct {
		name           string
		ready, ejected int
		want           bool
	}{
		{"the only backend stays", 1, 0, false},
		{"one of two", 2, 0, true},
		{"never both of two", 2, 1, false},
		{"one of three", 3, 0, true},
		{"not two of three", 3, 1, false},
		{"two of four", 4, 1, true},
		{"not three of four", 4, 2, false},
		{"none left", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := canEject(tc.ready, tc.ejected); got != tc.want {
				t.Errorf("canEject(%d, %d) = %v, want %v", tc.ready, tc.ejected, got, tc.want)
			}
		})
	}
}

func TestEjectPolicy(t *testing.T) {
	pol := ejectPolicy{after: 5, base: 10 * time.Second, max: 5 * time.Minute}
	t.Run("period grows and is capped", func(t *testing.T) {
		for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 30: 5 * time.Minute, 100: 5 * time.Minute} {
			if got := pol.period(n); got != want {
				t.Errorf("period(%d) = %s, want %s", n, got, want)
			}
		}
	})
	t.Run("should eject", func(t *testing.T) {
		for _, tc := range []struct {
			streak    int
			probation bool
			want      bool
		}{{4, false, false}, {5, false, true}, {6, false, true}, {1, true, true}} {
			if got := pol.shouldEject(tc.streak, tc.probation); got != tc.want {
				t.Errorf("shouldEject(%d, %v) = %v", tc.streak, tc.probation, got)
			}
		}
	})
	t.Run("prior ejections are forgotten after a healthy stretch", func(t *testing.T) {
		min5 := int64(5 * time.Minute)
		for _, tc := range []struct {
			name string
			o    outlier
			now  int64
			want int
		}{
			{"never ejected", outlier{}, 100, 0},
			{"ejected, not yet back", outlier{ejections: 2}, 100, 2},
			{"back a moment ago", outlier{ejections: 2, readmitted: 10}, 10 + min5 - 1, 2},
			{"back for the maximum period", outlier{ejections: 2, readmitted: 10}, 10 + min5, 0},
		} {
			if got := pol.priorEjections(tc.o, tc.now); got != tc.want {
				t.Errorf("%s: priorEjections = %d, want %d", tc.name, got, tc.want)
			}
		}
	})
}

func threeBackends() []Backend {
	return []Backend{
		{ID: "a", Replica: "web/1", Addr: netip.MustParseAddrPort("10.0.0.1:80"), Ready: true},
		{ID: "b", Replica: "web/2", Addr: netip.MustParseAddrPort("10.0.0.2:80"), Ready: true},
		{ID: "c", Replica: "web/3", Addr: netip.MustParseAddrPort("10.0.0.3:80"), Ready: true},
	}
}

func eligibleIDs(p *pool) []string {
	var ids []string
	for _, b := range p.set.Load().bs {
		ids = append(ids, b.id)
	}
	slices.Sort(ids)
	return ids
}

func backendByID(p *pool, id string) *backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.all {
		if b.id == id {
			return b
		}
	}
	return nil
}

// A replica that refuses connections is out even beyond the half, as long
// as one other stays in rotation.
func TestRefusingReplicaIsEjectedBeyondTheHalf(t *testing.T) {
	pol := ejectPolicy{after: 5, base: 10 * time.Second, max: 5 * time.Minute}
	p := testPool(t, pol, nil, threeBackends()...)
	now := 1000 * int64(time.Second)
	for _, id := range []string{"a", "b", "c"} {
		for range 5 {
			p.failed(backendByID(p, id), failConnect, now)
		}
	}
	if got := eligibleIDs(p); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("eligible = %v, want the last one kept", got)
	}
}

// TestEjectionStory walks one backend through ejection, readmission,
// probation and re-ejection with explicit times.
func TestEjectionStory(t *testing.T) {
	var events []Event
	pol := ejectPolicy{after: 5, base: 10 * time.Second, max: 5 * time.Minute}
	p := testPool(t, pol, func(ev Event) { events = append(events, ev) }, threeBackends()...)
	a := backendByID(p, "a")
	sec := int64(time.Second)
	now := 1000 * sec

	for range 4 {
		p.failed(a, 502, now)
	}
	if got := eligibleIDs(p); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after 4 failures eligible = %v", got)
	}
	p.succeeded(a)
	for range 4 {
		p.failed(a, 502, now)
	}
	if len(events) != 0 {
		t.Fatalf("a success should reset the streak; events: %v", events)
	}
	p.failed(a, 502, now)
	if got := eligibleIDs(p); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("after 5 failures eligible = %v", got)
	}
	want := Event{Kind: EventEject, Project: "p", Service: "web", Replica: "web/1", ID: "a",
		Message: "5 consecutive 502 responses; ejected for 10s", Duration: 10 * time.Second}
	if len(events) != 1 || !sameEvent(events[0], want) {
		t.Fatalf("events = %+v, want %+v", events, want)
	}

	// At most half of the ready backends: b cannot go while a is out.
	b := backendByID(p, "b")
	for range 10 {
		p.failed(b, 503, now)
	}
	if got := eligibleIDs(p); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("b was ejected too: eligible = %v", got)
	}
	p.succeeded(b)

	// Not back before its time; back at it, on probation.
	p.pick(now + 10*sec - 1)
	if len(events) != 1 {
		t.Fatalf("readmitted early: %+v", events)
	}
	p.pick(now + 10*sec)
	if got := eligibleIDs(p); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after the ejection eligible = %v", got)
	}
	if len(events) != 2 || events[1].Kind != EventReadmit || events[1].Replica != "web/1" {
		t.Fatalf("want a readmit event, got %+v", events)
	}

	// One failure on probation ejects again, for twice as long.
	now += 11 * sec
	p.failed(a, failConnect, now)
	if len(events) != 3 || events[2].Message != "failed on probation (connection failures); ejected for 20s" {
		t.Fatalf("want a probation ejection, got %+v", events[len(events)-1])
	}
	p.readmit(now + 20*sec)
	// A success ends probation: the next failure alone does not eject.
	p.succeeded(a)
	p.failed(a, 500, now+21*sec)
	if got := eligibleIDs(p); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("a failure after a success ejected: eligible = %v", got)
	}
}

func TestEjectionMessageMixedFailures(t *testing.T) {
	var events []Event
	p := testPool(t, ejectPolicy{after: 3, base: time.Second, max: time.Minute},
		func(ev Event) { events = append(events, ev) }, threeBackends()...)
	a := backendByID(p, "a")
	p.failed(a, 502, 1)
	p.failed(a, failConnect, 2)
	p.failed(a, failTimeout, 3)
	if len(events) != 1 || events[0].Message != "3 consecutive failures, the last timeouts; ejected for 1s" {
		t.Fatalf("events = %+v", events)
	}
}

func TestNeverEjectsTheLastBackend(t *testing.T) {
	var events []Event
	p := testPool(t, ejectPolicy{after: 1, base: time.Second, max: time.Minute},
		func(ev Event) { events = append(events, ev) }, threeBackends()[0])
	a := backendByID(p, "a")
	for i := range 20 {
		p.failed(a, 503, int64(i))
	}
	if len(events) != 0 || len(eligibleIDs(p)) != 1 {
		t.Fatalf("the only backend was ejected: %+v", events)
	}
}

func sameEvent(a, b Event) bool {
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b
}

func TestOnEventPanicIsContained(t *testing.T) {
	p := testPool(t, ejectPolicy{after: 1, base: time.Second, max: time.Minute},
		func(Event) { panic("journal broke") }, threeBackends()...)
	p.failed(backendByID(p, "a"), 502, 1) // must not panic
	if got := eligibleIDs(p); len(got) != 2 {
		t.Fatalf("eligible %v", got)
	}
}

// TestEjectedBackendIsTheLastResort: a replica ejected while it restarted
// is healthy again long before its ejection ends; when the backends left in
// rotation fail, a retry goes to it rather than failing the request.
func TestEjectedBackendIsTheLastResort(t *testing.T) {
	p := testPool(t, ejectPolicy{after: 1, base: time.Minute, max: time.Hour}, nil, threeBackends()...)
	a, b := backendByID(p, "a"), backendByID(p, "b")
	now := testNow()
	p.failed(a, failConnect, now) // ejected for a minute
	if got := eligibleIDs(p); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("eligible = %v", got)
	}
	for range 20 {
		if got := p.pickExcept(now, b, backendByID(p, "c")); got != a {
			t.Fatalf("with b and c tried, picked %v, want the ejected a", got)
		}
	}
	bs := threeBackends()
	bs[1].Ready, bs[2].Ready = false, false
	p.update(bs, func(string) bool { return false })
	if got := p.pick(now); got != a {
		t.Fatalf("with only the ejected a ready, picked %v", got)
	}
}
