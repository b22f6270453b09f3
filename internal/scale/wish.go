package scale

import (
	"fmt"
	"math"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// wish is the count this evaluation wants, by the target asking for the
// most; it also learns (or lowers) the capacity and lifts a no-effect
// verdict the picture has outgrown.
func (d *Decision) wish(a spec.Autoscale, obs Observed, now time.Time) Wish {
	f, cur, ready := obs.Figures, d.State.Replicas, obs.Ready
	best := Wish{At: now, Want: cur, Figures: "within targets"}
	consider := func(want int, r Reason, figures string) {
		want = min(max(want, a.Min), a.Max)
		if want > best.Want || best.Reason == "" {
			best = Wish{At: now, Want: want, Reason: r, Figures: figures}
		}
	}
	if a.HTTPTargets() && f.Rate == 0 && f.InFlight == 0 && (a.CPU == 0 || f.CPU < 0 || f.CPU <= (1-Tolerance)*a.CPU) {
		consider(a.Min, ReasonIdle, "no requests")
		return best
	}
	perReplica := 0.0
	if ready > 0 {
		perReplica = f.InFlight / float64(ready)
	}
	if a.P95 > 0 || a.P99 > 0 {
		d.latencyWish(a, obs, perReplica, consider)
	}
	if a.InFlight > 0 && ready > 0 {
		ratio := perReplica / a.InFlight
		want := cur
		if math.Abs(ratio-1) > Tolerance {
			want = int(math.Ceil(f.InFlight / a.InFlight))
		}
		consider(want, ReasonInFlight, fmt.Sprintf("in flight %.1f per replica, target %g (%d ready)", perReplica, a.InFlight, ready))
	}
	if a.CPU > 0 && f.CPU >= 0 && ready > 0 {
		ratio := f.CPU / a.CPU
		want := cur
		if math.Abs(ratio-1) > Tolerance {
			want = int(math.Ceil(float64(ready) * ratio))
		}
		consider(want, ReasonCPU, fmt.Sprintf("cpu %.2f cores per replica, target %.2f (%d ready)", f.CPU, a.CPU, ready))
	}
	return best
}

// latencyWish is the count latency asks for.
func (d *Decision) latencyWish(a spec.Autoscale, obs Observed, perReplica float64, consider func(int, Reason, string)) {
	f, cur, ready := obs.Figures, d.State.Replicas, obs.Ready
	share := 0.0
	var got, target time.Duration
	name := ""
	for _, m := range []struct {
		name        string
		got, target time.Duration
	}{{"p95", f.P95, a.P95}, {"p99", f.P99, a.P99}} {
		if m.target > 0 && m.got > 0 && (name == "" || float64(m.got)/float64(m.target) > share) {
			share, got, target, name = float64(m.got)/float64(m.target), m.got, m.target, m.name
		}
	}
	if name == "" {
		return // no timed request: latency says nothing
	}
	figures := fmt.Sprintf("%s %s, target %s (in flight %.1f per replica, %d ready)", name, got, target, perReplica, ready)
	if v := d.State.NoEffect; v != nil && (share <= 1 || f.InFlight >= v.RetryAt()) {
		d.State.NoEffect = nil // latency is met, or demand grew: the picture changed
	}
	switch {
	case share > 1+Tolerance && ready > 0:
		if d.State.Capacity > 0 && perReplica <= d.State.Capacity {
			d.State.Capacity = perReplica * (1 - Tolerance) // latency broke below it: it was too high
		}
		if v := d.State.NoEffect; v != nil {
			consider(cur, ReasonNoEffect, fmt.Sprintf("%s; scaling out did not help at %d replicas", figures, v.Replicas))
			return
		}
		consider(max(int(math.Ceil(float64(ready)*share/headroom)), cur+1), ReasonLatency, figures)
	case share <= 1:
		if ready == cur && perReplica > d.State.Capacity {
			d.State.Capacity = perReplica
		}
		want := cur
		if d.State.Capacity > 0 {
			want = min(cur, int(math.Ceil(f.InFlight/d.State.Capacity)))
		}
		consider(want, ReasonLatency, figures)
	default:
		consider(cur, ReasonLatency, figures)
	}
}

// stabilized is the count the wishes agree on: higher only when every wish
// over the up stabilization was, lower only when every wish over the down
// stabilization was, by at most MaxStep.
func (d *Decision) stabilized(a spec.Autoscale, now time.Time) int {
	ws, cur := d.State.Wishes, d.State.Replicas
	if n, ok := agreed(ws, now.Add(-a.UpStabilization), func(w int) bool { return w > cur }, lower); ok {
		return min(n, cur+a.MaxStep)
	}
	if n, ok := agreed(ws, now.Add(-a.DownStabilization), func(w int) bool { return w < cur }, higher); ok {
		return max(n, cur-a.MaxStep)
	}
	return cur
}

// agreed folds the wishes since since with pick when all pass ok and the
// wishes cover the whole span (one at or before since).
func agreed(ws []Wish, since time.Time, ok func(int) bool, pick func(int, int) int) (int, bool) {
	covered, n, any := false, 0, false
	for _, w := range ws {
		if !w.At.After(since) {
			covered = true
			if !w.At.Equal(since) {
				continue
			}
		}
		if !ok(w.Want) {
			return 0, false
		}
		if !any {
			n, any = w.Want, true
		} else {
			n = pick(n, w.Want)
		}
	}
	return n, any && covered
}

// keepSince drops the wishes older than since, keeping the newest of them
// (it tells whether the wishes cover a span).
func keepSince(ws []Wish, since time.Time) []Wish {
	i := 0
	for i+1 < len(ws) && ws[i+1].At.Before(since) {
		i++
	}
	return ws[i:]
}

func lower(a, b int) int  { return min(a, b) }
func higher(a, b int) int { return max(a, b) }
