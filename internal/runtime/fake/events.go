package fake

import (
	"context"
	"sync"

	"github.com/tend-sh/tend/internal/runtime"
)

// subscriber is one Events stream. Its queue has no bound, so the engine's
// part (Exit, SetHealth ...) never blocks on a reader that is busy, as the
// supervisor may be while it holds a lock the test is waiting on.
type subscriber struct {
	mu     sync.Mutex
	queue  []runtime.Event
	broken error         // set by BreakEvents: sent after the queued events
	wake   chan struct{} // capacity 1: something was queued or the stream broke
}

// Events streams the events of every change to a container, from now until
// ctx ends (the error channel then closes empty) or BreakEvents ends it. The
// actions are the engine's: create, start, die, stop, destroy and
// "health_status: <health>". Each stream gets every event, in order.
func (f *Fake) Events(ctx context.Context) (<-chan runtime.Event, <-chan error) {
	out := make(chan runtime.Event)
	errc := make(chan error, 1)
	f.mu.Lock()
	err := f.begin(MethodEvents)
	s := &subscriber{wake: make(chan struct{}, 1)}
	if err == nil {
		f.subs[s] = true
	}
	f.mu.Unlock()
	if err != nil {
		errc <- err
		close(out)
		close(errc)
		return out, errc
	}
	go func() {
		defer close(errc)
		defer close(out)
		defer f.unsubscribe(s)
		if err := s.forward(ctx, out); err != nil {
			errc <- err
		}
	}()
	return out, errc
}

// BreakEvents ends every open Events stream with err once it has delivered
// the events already queued, as when the engine's connection drops.
func (f *Fake) BreakEvents(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.mu.Lock()
		s.broken = err
		s.mu.Unlock()
		s.poke()
		delete(f.subs, s)
	}
}

func (f *Fake) unsubscribe(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, s)
}

// emit queues an event about c for every stream. The caller holds f.mu.
func (f *Fake) emit(c runtime.Container, action string) {
	e := runtime.Event{Project: c.Project, Service: c.Service, Container: c.ID, Action: action}
	for s := range f.subs {
		s.mu.Lock()
		s.queue = append(s.queue, e)
		s.mu.Unlock()
		s.poke()
	}
}

func (s *subscriber) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next pops the oldest queued event; ok is false when there is none.
func (s *subscriber) next() (e runtime.Event, broken error, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return runtime.Event{}, s.broken, false
	}
	e, s.queue = s.queue[0], s.queue[1:]
	return e, nil, true
}

// forward delivers the queue to out until ctx ends (nil) or the stream breaks (its error).
func (s *subscriber) forward(ctx context.Context, out chan<- runtime.Event) error {
	for {
		e, broken, ok := s.next()
		switch {
		case ok:
			select {
			case out <- e:
			case <-ctx.Done():
				return nil
			}
		case broken != nil:
			return broken
		default:
			select {
			case <-s.wake:
			case <-ctx.Done():
				return nil
			}
		}
	}
}
