package logwatch

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/testwait"
)

var fatal = []spec.LogRule{logRule("FATAL", 1, time.Minute, 0)}

func TestWatcherFiresAndReconnects(t *testing.T) {
	h := start(t, Config{})
	started := t0.Add(-time.Hour)
	h.w.Sync([]Target{{ID: "c1", Key: "web-1", Rules: fatal, StartedAt: started}})

	s1 := h.src.stream(t, "c1", 1)
	if !s1.since.Equal(started) {
		t.Errorf("first stream since %s, want StartedAt %s", s1.since, started)
	}
	s1.write(t, "INFO up", "FATAL one")
	want := Match{Container: "c1", Key: "web-1", Fire: Fire{Rule: 0, Action: spec.LogReplace, Line: "FATAL one", Count: 1}}
	if m := h.next(t); m != want {
		t.Errorf("match = %+v, want %+v", m, want)
	}
	h.clk.Advance(time.Second)
	read := h.clk.Now()
	s1.write(t, "FATAL two")
	if m := h.next(t); m.Line != "FATAL two" {
		t.Errorf("match line = %q", m.Line)
	}

	s1.w.Close() // the container stops
	h.clk.Advance(time.Second)
	if d := h.clk.wait(t); d != minBackoff {
		t.Errorf("reconnects after %s, want %s", d, minBackoff)
	}
	s2 := h.src.stream(t, "c1", 2)
	if !s2.since.Equal(read) {
		t.Errorf("second stream since %s, want the last line's read time %s", s2.since, read)
	}
	s2.write(t, "FATAL three")
	if m := h.next(t); m.Line != "FATAL three" {
		t.Errorf("match line after reconnect = %q", m.Line)
	}
}

func TestWatcherBackoff(t *testing.T) {
	h := start(t, Config{})
	h.src.fail = 8
	h.w.Sync([]Target{{ID: "c1", Rules: fatal}})
	var got []time.Duration
	for range 8 {
		got = append(got, h.clk.wait(t))
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
	s := h.src.stream(t, "c1", 9)
	s.write(t, "INFO a line resets the backoff")
	s.w.Close()
	if d := h.clk.wait(t); d != minBackoff {
		t.Errorf("after a stream with lines, waits %s, want %s", d, minBackoff)
	}
	h.src.stream(t, "c1", 10).w.Close()
	if d := h.clk.wait(t); d != 2*minBackoff {
		t.Errorf("after an empty stream, waits %s, want %s", d, 2*minBackoff)
	}
}

func TestWatcherSync(t *testing.T) {
	src := &fakeSource{}
	h := &harness{src: src, clk: newAfterClock(), matches: make(chan Match, 10)}
	h.w = New(Config{Source: src, Clock: h.clk, OnFire: func(m Match) { h.matches <- m }})
	// Before Run: remembered, followed once Run starts. No rules: not followed.
	h.w.Sync([]Target{{ID: "a", Key: "web-1", Rules: fatal}, {ID: "quiet", Key: "db-1"}})
	h.run(t)
	a := src.stream(t, "a", 1)

	h.w.Sync([]Target{{ID: "a", Key: "web-1", Rules: fatal}, {ID: "b", Key: "web-2", Rules: fatal}})
	b := src.stream(t, "b", 1)
	b.write(t, "FATAL b")
	if m := h.next(t); m.Container != "b" || m.Key != "web-2" {
		t.Errorf("match = %+v, want one of b, web-2", m)
	}

	// a's rules change: its stream restarts where the old one stopped, and
	// the new rules apply.
	h.clk.Advance(time.Second)
	read := h.clk.Now()
	a.write(t, "FATAL read at t0+1s")
	h.next(t) // it was read
	h.clk.Advance(time.Second)
	h.w.Sync([]Target{{ID: "a", Key: "web-1", Rules: []spec.LogRule{logRule("panic:", 1, time.Minute, 0)}}})
	a2 := src.stream(t, "a", 2)
	if !a2.since.Equal(read) {
		t.Errorf("restarted stream since %s, want %s", a2.since, read)
	}
	testwait.Eventually(t, "old streams closed", func() bool { return a.closed.Load() && b.closed.Load() })
	a2.write(t, "FATAL not any more", "panic: now")
	if m := h.next(t); m.Line != "panic: now" {
		t.Errorf("match line = %q, want the new rule's", m.Line)
	}

	// Only the key changes: the follower restarts too, to echo the new key.
	h.w.Sync([]Target{{ID: "a", Key: "web-1b", Rules: []spec.LogRule{logRule("panic:", 1, time.Minute, 0)}}})
	a3 := src.stream(t, "a", 3)
	a3.write(t, "panic: again")
	if m := h.next(t); m.Key != "web-1b" {
		t.Errorf("match key = %q, want web-1b", m.Key)
	}

	h.w.Sync(nil)
	testwait.Eventually(t, "the last stream closed", a3.closed.Load)
	if n := src.count("quiet"); n != 0 {
		t.Errorf("a target without rules was followed %d times", n)
	}
}

func TestWatcherLongLines(t *testing.T) {
	h := start(t, Config{})
	h.w.Sync([]Target{{ID: "c1", Rules: fatal}})
	s := h.src.stream(t, "c1", 1)
	pad := strings.Repeat("x", 200<<10)
	s.write(t, "FATAL at the start"+pad+"FATAL")
	if m := h.next(t); !strings.HasPrefix(m.Line, "FATAL at the start") || len(m.Line) != MaxFireLine {
		t.Errorf("match line = %q... (%d bytes)", cut(m.Line), len(m.Line))
	}
	s.write(t, pad+"FATAL beyond the cut", "after FATAL")
	if m := h.next(t); m.Line != "after FATAL" {
		t.Errorf("match line = %q, want the line after the long one", cut(m.Line))
	}
}

// A container that floods its output costs a bounded amount of memory, and
// every match in it fires.
func TestWatcherFlood(t *testing.T) {
	const blocks = 50 // of 1 MiB, each with one match
	var fired atomic.Int64
	h := start(t, Config{OnFire: func(Match) { fired.Add(1) }})
	h.w.Sync([]Target{{ID: "c1", Rules: fatal}})
	s := h.src.stream(t, "c1", 1)

	var block strings.Builder
	for i := 0; block.Len() < 1<<20; i++ {
		fmt.Fprintf(&block, "level=info ts=2025-01-02T10:00:00Z msg=\"request served\" path=/api/items/%d bytes=%d\n", i, i*7)
	}
	block.WriteString("FATAL once per block\n")
	data := []byte(block.String())

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before, peak := ms.HeapInuse, ms.HeapInuse
	for i := range blocks {
		if _, err := s.w.Write(data); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	testwait.Eventually(t, "every match fired", func() bool { return fired.Load() == blocks })
	if grew := int64(peak) - int64(before); grew > 32<<20 {
		t.Errorf("heap in use grew by %d MiB while following %d MiB", grew>>20, blocks)
	}
}

// While OnFire is slow, the stream is read no further than a few fires
// ahead: the output waits in the pipe (the engine), not in tend.
func TestWatcherSlowOnFire(t *testing.T) {
	const lines = 2000
	release := make(chan struct{})
	var fired atomic.Int64
	h := start(t, Config{OnFire: func(Match) {
		<-release
		fired.Add(1)
	}})
	h.w.Sync([]Target{{ID: "c1", Rules: fatal}})
	s := h.src.stream(t, "c1", 1)
	var written atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range lines {
			if _, err := io.WriteString(s.w, fmt.Sprintf("FATAL %d\n", i)); err != nil {
				return
			}
			written.Add(1)
		}
	}()
	testwait.Eventually(t, "the queue to fill", func() bool { return written.Load() >= fireQueue })
	time.Sleep(50 * time.Millisecond)
	if n := written.Load(); n > fireQueue+3 {
		t.Errorf("%d lines read while OnFire was blocked, want at most %d", n, fireQueue+3)
	}
	close(release)
	<-done
	testwait.Eventually(t, "every match fired", func() bool { return fired.Load() == lines })
}
