package probe

import (
	"context"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// quickInterval paces the extra checks of a replica that has no verdict yet.
const quickInterval = 100 * time.Millisecond

// checkLoop checks l's probe at once, then every interval from the start of
// the previous check, until ctx ends. A check slower than the interval
// delays the next one; checks never overlap.
//
// While the verdict is still Unknown (a replica starting) it also checks
// every quickInterval in between, and counts only the passes of those extra
// checks: a new replica, a replacement above all, is found ready within a
// tenth of a second of listening instead of up to an interval later, while
// failures still count once per interval, so a slow starter is not condemned
// faster than the thresholds say.
func (p *Prober) checkLoop(ctx context.Context, t *target, tg Target, l *loop) {
	interval := l.probe.Interval
	if interval <= 0 {
		interval = spec.DefaultProbeInterval
	}
	var due time.Time // of the next regular check; zero: now
	for {
		start := p.cfg.Clock.Now()
		r := Check(ctx, l.probe, tg, p.cfg.Exec)
		if ctx.Err() != nil {
			return // a check cut short by a stop is no verdict
		}
		r.At = start // on the Prober's clock, which the thresholds and start grace are measured on
		regular := !start.Before(due)
		if regular || r.OK {
			p.record(t, l, r)
		}
		if regular {
			due = start.Add(interval)
		}
		wait := max(due.Sub(p.cfg.Clock.Now()), 0)
		if p.unknown(t, l) {
			wait = min(wait, quickInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.cfg.Clock.After(wait):
		}
	}
}

// unknown tells whether the states l feeds have no verdict yet.
func (p *Prober) unknown(t *target, l *loop) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return (!l.live || t.health.Live.Status == Unknown) && (!l.ready || t.health.Ready.Status == Unknown)
}

// record folds r into the states l feeds, and tells OnChange when a status changed.
func (p *Prober) record(t *target, l *loop, r Result) {
	p.mu.Lock()
	if l.stopped {
		p.mu.Unlock()
		return
	}
	before := t.health
	if l.live {
		t.health.Live = t.health.Live.Observe(l.probe, t.w.StartedAt, r)
	}
	if l.ready {
		t.health.Ready = t.health.Ready.Observe(l.probe, t.w.StartedAt, r)
	}
	after, id := t.health, t.w.ID
	p.mu.Unlock()

	// The first failure of a passing liveness probe is news too: tend may
	// start a standby before the threshold is reached.
	changed := l.live && before.Live.Status == Passing && before.Live.Failures == 0 && after.Live.Failures > 0
	for _, c := range []struct {
		probe         string
		before, after Status
	}{{"liveness", before.Live.Status, after.Live.Status}, {"readiness", before.Ready.Status, after.Ready.Status}} {
		if c.before != c.after {
			changed = true
			p.cfg.Log.Info("probe verdict changed", "container", id, "probe", c.probe,
				"from", c.before, "to", c.after, "output", r.Output, "took", r.Took.Round(time.Millisecond))
		}
	}
	if changed && p.cfg.OnChange != nil {
		p.cfg.OnChange(id)
	}
}
