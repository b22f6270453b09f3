package logwatch

import (
	"context"
	"github.com/tend-sh/tend/internal/runtime"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/spec"
)

// Source streams a container's output; runtime.Runtime satisfies it.
type Source interface {
	// Logs follows a container's output (stdout and stderr, demultiplexed)
	// as o says, until the container stops, ctx ends or the reader is
	// closed. Close may be called while a Read waits, to end it.
	Logs(ctx context.Context, id string, o runtime.LogOptions) (io.ReadCloser, error)
}

// Config wires a Watcher; zero values of the optional fields are defaults.
type Config struct {
	Source Source      // required
	Clock  clock.Clock // default clock.Real
	// OnFire is told of every rule that fires. The Watcher calls it from one
	// goroutine of its own, one call at a time; while it is busy, a few fires
	// wait and then the streams that fire more stop being read, so a slow
	// OnFire holds the engine's output back instead of piling it up here.
	OnFire func(Match)
	Log    *slog.Logger // default: discard
}

// Target is a container to watch.
type Target struct {
	ID        string
	Rules     []spec.LogRule // a target without rules is not followed
	StartedAt time.Time      // the first stream starts here
	Key       string         // the caller's name for the replica, echoed in Match
}

// Match is a rule that fired on a container's output.
type Match struct {
	Container string // Target.ID
	Key       string // Target.Key
	Fire
}

// Watcher follows the output of a set of containers, one stream each, and
// reports the log rules that fire.
type Watcher struct {
	cfg  Config
	wake chan struct{}

	mu      sync.Mutex
	targets map[string]Target // the desired set, as last synced
}

// New returns a Watcher; it starts nothing until Run.
func New(cfg Config) *Watcher {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.OnFire == nil {
		cfg.OnFire = func(Match) {}
	}
	return &Watcher{cfg: cfg, wake: make(chan struct{}, 1), targets: map[string]Target{}}
}

// Sync sets the containers to follow, all of them: it follows new ones,
// stops following those gone, and restarts the follower of one whose Rules
// or Key changed (its matches so far are forgotten; its stream resumes where
// the old one stopped). A changed StartedAt alone changes nothing: the
// stream already resumes after the last line read. Sync never blocks; it may
// be called before Run.
func (w *Watcher) Sync(targets []Target) {
	set := make(map[string]Target, len(targets))
	for _, t := range targets {
		if len(t.Rules) > 0 {
			t.Rules = slices.Clone(t.Rules) // the followers read it
			set[t.ID] = t
		}
	}
	w.mu.Lock()
	w.targets = set
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// fireQueue is how many fires may wait for OnFire before followers block.
const fireQueue = 16

// Run follows the synced containers until ctx ends, and returns nil after
// every follower has stopped. Run is called once.
func (w *Watcher) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	fires := make(chan Match, fireQueue)
	g.Go(func() error { return w.deliver(ctx, fires) })
	g.Go(func() error { return w.manage(ctx, g, fires) })
	return g.Wait()
}

// deliver calls OnFire for each fire, in order.
func (w *Watcher) deliver(ctx context.Context, fires <-chan Match) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-fires:
			w.cfg.OnFire(m)
		}
	}
}

// follower is the state of one container's stream.
type follower struct {
	target Target
	cancel context.CancelFunc
	done   chan struct{} // closed when its goroutine has returned
	prev   *follower     // the follower it replaces, which it waits for; read by its goroutine only
	last   atomic.Int64  // when the last line was read, in Unix nanoseconds; 0 before the first
}

// manage starts and stops followers to match the synced set.
func (w *Watcher) manage(ctx context.Context, g *errgroup.Group, fires chan<- Match) error {
	running := map[string]*follower{}
	for {
		w.mu.Lock()
		want := w.targets
		w.mu.Unlock()
		replaced := map[string]*follower{}
		for id, f := range running {
			t, ok := want[id]
			if ok && sameFollow(t, f.target) {
				continue
			}
			f.cancel()
			delete(running, id)
			if ok {
				replaced[id] = f
			}
		}
		for id, t := range want {
			if _, ok := running[id]; ok {
				continue
			}
			fctx, cancel := context.WithCancel(ctx)
			f := &follower{target: t, cancel: cancel, done: make(chan struct{}), prev: replaced[id]}
			running[id] = f
			g.Go(func() error { return w.follow(fctx, f, fires) })
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		}
	}
}

func sameFollow(a, b Target) bool { return a.Key == b.Key && slices.Equal(a.Rules, b.Rules) }
