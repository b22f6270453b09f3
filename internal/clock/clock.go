// Package clock is the only place besides cmd/ that reads the wall clock.
// Long-lived code takes a Clock; pure code takes `now` as a value.
package clock

import (
	"slices"
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// Since is time.Since on this clock: on Real, of a time it gave, the
	// monotonic clock alone, which is half the cost of Now on a hot path.
	Since(t time.Time) time.Duration
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
	// AfterFunc is time.AfterFunc on this clock: f runs in a goroutine of
	// its own (on Fake, in the one that advances the clock).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer of AfterFunc, as *time.Timer is one.
type Timer interface {
	// Stop keeps the timer from firing; false if it already fired or was stopped.
	Stop() bool
	// Reset makes it fire d from now, once more; false if it had fired or was stopped.
	Reset(d time.Duration) bool
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time                            { return time.Now() }
func (Real) Since(t time.Time) time.Duration           { return time.Since(t) }
func (Real) After(d time.Duration) <-chan time.Time    { return time.After(d) }
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Fake is a clock that moves only when told to.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time // After's; nil for a timer of AfterFunc
	t  *fakeTimer
}

// NewFake returns a fake clock set to now.
func NewFake(now time.Time) *Fake { return &Fake{now: now} }

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Since is the fake time since t.
func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	at := f.now.Add(d)
	if d <= 0 {
		ch <- f.now
		return ch
	}
	f.waiters = append(f.waiters, waiter{at: at, ch: ch})
	return ch
}

// AfterFunc runs fn when the clock has been advanced by d (at once, in a
// goroutine of its own, when d is not positive).
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{f: f, fn: fn}
	if d <= 0 {
		go fn()
		return t
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waiters = append(f.waiters, waiter{at: f.now.Add(d), t: t})
	return t
}

// Advance moves the clock forward and fires the timers that came due, each
// with the time it came due, as a real timer would have. The functions of
// AfterFunc run in due order, in Advance, once the clock reads its new time.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	kept := f.waiters[:0]
	var due []waiter
	for _, w := range f.waiters {
		switch {
		case w.at.After(f.now):
			kept = append(kept, w)
		case w.t != nil:
			due = append(due, w)
		default:
			w.ch <- w.at
		}
	}
	f.waiters = kept
	f.mu.Unlock()
	slices.SortStableFunc(due, func(a, b waiter) int { return a.at.Compare(b.at) })
	for _, w := range due {
		w.t.fn()
	}
}

// Timers is the number of timers (of After and AfterFunc) not yet fired
// or stopped: how a test knows that what it drives is waiting.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

type fakeTimer struct {
	f  *Fake
	fn func()
}

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.remove()
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	pending := t.remove()
	if d <= 0 {
		go t.fn()
		return pending
	}
	t.f.waiters = append(t.f.waiters, waiter{at: t.f.now.Add(d), t: t})
	return pending
}

// remove takes the timer off the clock; call with its lock held.
func (t *fakeTimer) remove() bool {
	i := slices.IndexFunc(t.f.waiters, func(w waiter) bool { return w.t == t })
	if i < 0 {
		return false
	}
	t.f.waiters = slices.Delete(t.f.waiters, i, i+1)
	return true
}
