package logwatch

import (
	"bufio"
	"context"
	"errors"
	"github.com/tend-sh/tend/internal/runtime"
	"io"
	"time"
)

// Reconnection backoff: a stream that ends is asked for again after
// minBackoff, doubling up to maxBackoff while streams bring no lines.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// follow reads one container's output until ctx ends, reconnecting when the
// stream ends: a stopped container may start again and write more.
func (w *Watcher) follow(ctx context.Context, f *follower, fires chan<- Match) error {
	defer close(f.done)
	log := w.cfg.Log.With("container", f.target.ID, "key", f.target.Key)
	if prev := f.prev; prev != nil {
		f.prev = nil
		select {
		case <-ctx.Done():
			return nil
		case <-prev.done:
		}
		f.last.Store(prev.last.Load())
	}
	m, err := NewMatcher(f.target.Rules)
	if err != nil {
		log.Error("log rules not watched", "err", err)
		return nil
	}
	br := bufio.NewReaderSize(nil, MaxLine)
	delay := minBackoff
	for {
		since := f.target.StartedAt
		if last := f.last.Load(); last != 0 {
			since = time.Unix(0, last)
		}
		rc, err := w.cfg.Source.Logs(ctx, f.target.ID, runtime.LogOptions{Since: since, Follow: true})
		if err == nil {
			// Closing the stream is what unblocks a read when ctx ends.
			stop := context.AfterFunc(ctx, func() { rc.Close() })
			br.Reset(rc)
			var lines int
			lines, err = w.read(ctx, f, br, m, fires)
			if stop() {
				rc.Close()
			}
			br.Reset(nil)
			m.EndRecord()
			if lines > 0 {
				delay = minBackoff
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Warn("container output lost; reconnecting", "err", err, "in", delay)
		} else {
			log.Debug("container output ended; reconnecting", "in", delay)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.cfg.Clock.After(delay):
		}
		delay = min(delay*2, maxBackoff)
	}
}

// read matches the lines of one stream until it ends, and returns how many
// it read and why it ended (nil at its end). Each line costs at most
// MaxLine bytes of memory, the reader's buffer: the rest of a longer line
// is skipped.
func (w *Watcher) read(ctx context.Context, f *follower, br *bufio.Reader, m *Matcher, fires chan<- Match) (int, error) {
	lines := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			lines++
			if !w.match(ctx, f, m, line, fires) {
				return lines, nil
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			err = skipLine(br)
		}
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return lines, err
		}
	}
}

// match matches one line and hands on what fires; false when ctx ended.
func (w *Watcher) match(ctx context.Context, f *follower, m *Matcher, line []byte, fires chan<- Match) bool {
	now := w.cfg.Clock.Now()
	f.last.Store(now.UnixNano())
	for _, fire := range m.Line(line, now) {
		select {
		case <-ctx.Done():
			return false
		case fires <- Match{Container: f.target.ID, Key: f.target.Key, Fire: fire}:
		}
	}
	return true
}

// skipLine discards the rest of a line longer than the reader's buffer.
func skipLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}
