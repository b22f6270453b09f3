package logwatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/testwait"
)

// fakeSource hands out one io.Pipe per Logs call and records the calls: a
// test writes the container's output into the call's writer, and closes it
// when the container stops.
type fakeSource struct {
	mu    sync.Mutex
	calls []*stream
	fail  int // the next fail calls return an error
}

type stream struct {
	id     string
	since  time.Time
	w      *io.PipeWriter
	closed atomic.Bool // the watcher closed its reader
}

type reader struct {
	*io.PipeReader
	st *stream
}

func (r reader) Close() error {
	r.st.closed.Store(true)
	return r.PipeReader.Close()
}

func (s *fakeSource) Logs(ctx context.Context, id string, o runtime.LogOptions) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		s.calls = append(s.calls, &stream{id: id, since: o.Since})
		return nil, errors.New("engine unavailable")
	}
	r, w := io.Pipe()
	context.AfterFunc(ctx, func() { r.CloseWithError(ctx.Err()) })
	st := &stream{id: id, since: o.Since, w: w}
	s.calls = append(s.calls, st)
	return reader{r, st}, nil
}

// stream waits for the n-th call (from 1) for id.
func (s *fakeSource) stream(t *testing.T, id string, n int) *stream {
	t.Helper()
	var found *stream
	testwait.Eventually(t, fmt.Sprintf("logs call %d of %s", n, id), func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		seen := 0
		for _, c := range s.calls {
			if c.id == id {
				if seen++; seen == n {
					found = c
					return true
				}
			}
		}
		return false
	})
	return found
}

func (s *fakeSource) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.id == id {
			n++
		}
	}
	return n
}

// write writes lines into the stream, failing the test if it is closed.
func (st *stream) write(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(st.w, l+"\n"); err != nil {
			t.Fatalf("write to %s: %v", st.id, err)
		}
	}
}

// afterClock is a fake clock that tells the test the wait each After asks
// for, so the test advances it only once the watcher waits.
type afterClock struct {
	*clock.Fake
	waits chan time.Duration
}

func newAfterClock() *afterClock {
	return &afterClock{Fake: clock.NewFake(t0), waits: make(chan time.Duration, 100)}
}

func (c *afterClock) After(d time.Duration) <-chan time.Time {
	ch := c.Fake.After(d)
	c.waits <- d
	return ch
}

// wait takes the next wait asked for, and lets it pass.
func (c *afterClock) wait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.waits:
		c.Advance(d)
		return d
	case <-time.After(testwait.For):
		t.Fatal("the watcher does not wait")
		return 0
	}
}

// harness runs a Watcher on a fakeSource and collects its matches.
type harness struct {
	src     *fakeSource
	clk     *afterClock
	w       *Watcher
	matches chan Match
}

// start runs a watcher until the test ends, then checks that Run returns
// and leaves no goroutines behind.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{src: &fakeSource{}, clk: newAfterClock(), matches: make(chan Match, 1000)}
	cfg.Source, cfg.Clock = h.src, h.clk
	if cfg.OnFire == nil {
		cfg.OnFire = func(m Match) { h.matches <- m }
	}
	h.w = New(cfg)
	h.run(t)
	return h
}

func (h *harness) run(t *testing.T) {
	before := goruntime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(testwait.For):
			t.Error("Run does not return after its context ended")
		}
		testwait.Goroutines(t, before)
	})
}

// next waits for the next match.
func (h *harness) next(t *testing.T) Match {
	t.Helper()
	select {
	case m := <-h.matches:
		return m
	case <-time.After(testwait.For):
		t.Fatal("no match")
		return Match{}
	}
}

// none checks that no match came.
func (h *harness) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-h.matches:
		t.Fatalf("unexpected match %+v", m)
	default:
	}
}
