package clock_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/clock"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func TestFakeAdvance(t *testing.T) {
	c := clock.NewFake(t0)
	// Registered out of order; each must fire with its own due time.
	timers := map[time.Duration]<-chan time.Time{}
	for _, d := range []time.Duration{3 * time.Second, time.Second, 10 * time.Second, 5 * time.Second, 2 * time.Second} {
		timers[d] = c.After(d)
	}
	steps := []struct {
		name    string
		advance time.Duration
		fire    []time.Duration // in the order they came due
	}{
		{name: "not yet", advance: 999 * time.Millisecond},
		{name: "the first comes due", advance: time.Millisecond, fire: []time.Duration{time.Second}},
		{name: "several at once, up to and including now", advance: 4 * time.Second,
			fire: []time.Duration{2 * time.Second, 3 * time.Second, 5 * time.Second}},
		{name: "the last not early", advance: 4 * time.Second},
		{name: "the last", advance: time.Second, fire: []time.Duration{10 * time.Second}},
	}
	for _, s := range steps {
		c.Advance(s.advance)
		for _, d := range s.fire {
			select {
			case got := <-timers[d]:
				if want := t0.Add(d); !got.Equal(want) {
					t.Errorf("%s: After(%s) fired with %s, want its due time %s", s.name, d, got, want)
				}
				delete(timers, d)
			default:
				t.Errorf("%s: After(%s) did not fire at %s", s.name, d, c.Now().Sub(t0))
			}
		}
		for d, ch := range timers {
			select {
			case got := <-ch:
				t.Errorf("%s: After(%s) fired early at %s (value %s)", s.name, d, c.Now().Sub(t0), got)
				delete(timers, d)
			default:
			}
		}
	}
	if got, want := c.Now(), t0.Add(10*time.Second); !got.Equal(want) {
		t.Errorf("Now() = %s, want %s", got, want)
	}
}

func TestFakeAfterCountsFromNow(t *testing.T) {
	c := clock.NewFake(t0)
	c.Advance(time.Minute)
	ch := c.After(time.Second)
	c.Advance(999 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("fired before its second was up")
	default:
	}
	c.Advance(time.Millisecond)
	select {
	case got := <-ch:
		if want := t0.Add(time.Minute + time.Second); !got.Equal(want) {
			t.Errorf("fired with %s, want %s", got, want)
		}
	default:
		t.Fatal("did not fire")
	}
}

func TestFakeAfterNowFiresAtOnce(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		c := clock.NewFake(t0)
		select {
		case got := <-c.After(d):
			if !got.Equal(t0) {
				t.Errorf("After(%s) fired with %s, want %s", d, got, t0)
			}
		default:
			t.Errorf("After(%s) did not fire at once", d)
		}
	}
}

func TestReal(t *testing.T) {
	var c clock.Clock = clock.Real{}
	before := time.Now()
	got := <-c.After(time.Millisecond)
	if got.Before(before.Add(time.Millisecond)) {
		t.Errorf("Real.After(1ms) fired at %s, less than 1ms after %s", got, before)
	}
	if now := c.Now(); now.Before(got) {
		t.Errorf("Real.Now() = %s, before the timer fired (%s)", now, got)
	}
}

func TestFakeAfterFunc(t *testing.T) {
	c := clock.NewFake(t0)
	var fired []string
	at := func(name string) func() { return func() { fired = append(fired, name+"@"+c.Now().Sub(t0).String()) } }
	late := c.AfterFunc(3*time.Second, at("late"))
	c.AfterFunc(time.Second, at("early"))
	stopped := c.AfterFunc(2*time.Second, at("stopped"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop of a pending timer: want true, then false")
	}
	if n := c.Timers(); n != 2 {
		t.Fatalf("Timers() = %d, want 2 pending", n)
	}
	c.Advance(5 * time.Second)
	// Both came due in this advance: in due order, with the clock at its new time.
	if got := strings.Join(fired, " "); got != "early@5s late@5s" {
		t.Fatalf("fired %q", got)
	}
	if late.Reset(time.Second) {
		t.Fatal("Reset of a fired timer reported it pending")
	}
	c.Advance(999 * time.Millisecond)
	if len(fired) != 2 {
		t.Fatal("a reset timer fired early")
	}
	c.Advance(time.Millisecond)
	if got := fired[len(fired)-1]; got != "late@6s" {
		t.Fatalf("the reset timer fired as %q", got)
	}
	if c.Timers() != 0 {
		t.Fatalf("%d timers left", c.Timers())
	}
}
