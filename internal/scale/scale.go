package scale

import (
	"fmt"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// Reason says why the count changed; it is the journal entry's reason.
type Reason string

const (
	ReasonLatency  Reason = "latency"   // p95 or p99 over its target
	ReasonInFlight Reason = "in-flight" // requests in flight per replica off its target
	ReasonCPU      Reason = "cpu"       // CPU per replica off its target
	ReasonIdle     Reason = "idle"      // no traffic: back to min
	ReasonNoEffect Reason = "no-effect" // more replicas did not bring latency down: back
	ReasonBounds   Reason = "bounds"    // min or max moved past the count
)

// Tolerance is the band around a target inside which nothing changes, so
// noise around the target does not flap the count.
const Tolerance = 0.10

// Thresholds of the no-effect rule (see the package doc).
const (
	loadFell    = 0.75 // load per replica at or below this share of before: it fell
	latencyFell = 0.90 // latency at or above before over this: it rose with load
	// latencyFollows is the least share of load per replica's fall that
	// latency must fall by for a scale-out to have helped.
	latencyFollows = 1.0 / 3
	pictureGrew    = 1.5 // demand this many times the verdict's: try again
	// headroom is the share of a latency target a scale-out aims at: the
	// proxy's and the host's own overhead do not shrink with replicas, so
	// aiming at the target itself takes a second step to get under it.
	headroom = 0.8
	// settleLimit is how long a change may wait for its replicas to be ready
	// before the planner weighs the ones that are (a replica that never gets
	// ready is the reconciler's to heal, not a reason to stop scaling).
	settleLimit = 30 * time.Second
)

// Figures are what was measured of one service over the proxy's recent window.
type Figures struct {
	Known    bool          // false: no figures yet (no route): nothing is decided
	Rate     float64       // requests per second
	InFlight float64       // requests in flight now, over all replicas
	P95, P99 time.Duration // 0 with no timed request
	CPU      float64       // mean cores per ready replica; below 0: unknown
}

// Observed is the service as the supervisor saw it.
type Observed struct {
	Replicas int // containers in the service's slots, ready or not
	Ready    int // of which ready
	Figures  Figures
	Held     string // non-empty: held (quarantine, rollout) for this reason: not scaled
	Spec     string // the spec's hash: a new spec is a new picture for the no-effect rule
}

// State is the planner's memory of one service. The caller keeps it and
// hands it back; a new service starts at State{Replicas: min}.
type State struct {
	Replicas int       `json:"replicas"`
	Changed  time.Time `json:"changed,omitzero"` // when Replicas last changed
	// Settled is when the last change's replicas were all seen ready; zero: not yet.
	Settled time.Time `json:"settled,omitzero"`
	// Wishes are the recent wanted counts since the last change, oldest first.
	Wishes   []Wish   `json:"wishes,omitempty"`
	Trial    *Trial   `json:"trial,omitempty"`     // a scale-out for latency under test
	NoEffect *Verdict `json:"no_effect,omitempty"` // scaling out did not help; see the package doc
	// Capacity is the most requests in flight per ready replica seen while
	// latency met its targets: the planner's measure for scaling in under load.
	Capacity float64 `json:"capacity,omitempty"`
}

// Wish is one evaluation's wanted count.
type Wish struct {
	At      time.Time `json:"at"`
	Want    int       `json:"want"`
	Reason  Reason    `json:"reason"`
	Figures string    `json:"figures,omitempty"`
}

// Trial is what a scale-out for latency is judged against.
type Trial struct {
	From     int           `json:"from"`
	To       int           `json:"to"`
	Load     float64       `json:"load"`      // requests in flight per ready replica before
	InFlight float64       `json:"in_flight"` // in flight over all replicas before
	Latency  time.Duration `json:"latency"`   // the latency that asked for it
	// Doubted is when the evaluations began to say the step did not help:
	// a verdict needs them all to say so over the up stabilization, since
	// one noisy second of latency is no picture.
	Doubted time.Time `json:"doubted,omitzero"`
}

// Verdict records a scale-out that did not help.
type Verdict struct {
	Replicas int           `json:"replicas"` // the count that served as well
	InFlight float64       `json:"in_flight"`
	Latency  time.Duration `json:"latency"`
	Spec     string        `json:"spec,omitempty"`
	At       time.Time     `json:"at"`
}

// Decision is one evaluation's outcome.
type Decision struct {
	State   State  // the next memory; State.Replicas is the count to run
	Reason  Reason // set when the count changed
	Message string // the figures the change was made on
	Wake    time.Time
}

// Plan weighs one service's figures; a is its validated autoscale block.
func Plan(a spec.Autoscale, st State, obs Observed, now time.Time) Decision {
	d := Decision{State: st, Wake: now.Add(a.Interval)}
	if n := min(max(st.Replicas, a.Min), a.Max); n != st.Replicas {
		d.change(n, now, ReasonBounds, fmt.Sprintf("%d -> %d: bounds are min %d, max %d", st.Replicas, n, a.Min, a.Max))
		return d
	}
	if obs.Held != "" {
		d.State.Wishes, d.State.Trial = nil, nil
		return d
	}
	if v := d.State.NoEffect; v != nil && v.Spec != obs.Spec {
		d.State.NoEffect = nil // a new spec is a new picture
	}
	if d.State.Settled.IsZero() {
		if obs.Ready < st.Replicas || obs.Replicas != st.Replicas {
			if now.Sub(st.Changed) < settleLimit {
				return d // no action while replicas start or stop
			}
		}
		d.State.Settled = now
	}
	if until := d.State.Settled.Add(a.Cooldown); now.Before(until) {
		d.Wake = until
		return d
	}
	f := obs.Figures
	if !f.Known {
		return d
	}
	if t := d.State.Trial; t != nil {
		d.State.Trial = nil
		switch d.judge(a, t, obs, now) {
		case noEffect:
			return d
		case doubtful:
			d.State.Trial = t // the count holds while the doubt is weighed
			return d
		}
	}
	w := d.wish(a, obs, now)
	d.State.Wishes = append(keepSince(d.State.Wishes, now.Add(-max(a.UpStabilization, a.DownStabilization)-a.Interval)), w)
	n := d.stabilized(a, now)
	if n == st.Replicas {
		return d
	}
	reason, figures := w.Reason, w.Figures
	msg := fmt.Sprintf("%d -> %d: %s", st.Replicas, n, figures)
	if n > st.Replicas && reason == ReasonLatency && obs.Ready > 0 {
		trial := &Trial{From: st.Replicas, To: n, Load: f.InFlight / float64(obs.Ready), InFlight: f.InFlight, Latency: latency(a, f)}
		d.change(n, now, reason, msg)
		d.State.Trial = trial
		return d
	}
	d.change(n, now, reason, msg)
	return d
}

func (d *Decision) change(n int, now time.Time, r Reason, msg string) {
	d.State.Replicas, d.State.Changed, d.State.Settled, d.State.Wishes = n, now, time.Time{}, nil
	d.Reason, d.Message = r, msg
}

// trialVerdict is what one evaluation makes of a trial.
type trialVerdict int

const (
	settledTrial trialVerdict = iota // it helped, or taught nothing: the trial ends
	doubtful                         // it seems not to have helped: evaluated again
	noEffect                         // it did not help, over the whole span: the count went back
)

// judge applies the no-effect rule to a trial whose replicas are ready.
func (d *Decision) judge(a spec.Autoscale, t *Trial, obs Observed, now time.Time) trialVerdict {
	f := obs.Figures
	if obs.Ready == 0 || t.Load <= 0 || t.Latency <= 0 {
		return settledTrial
	}
	load := f.InFlight / float64(obs.Ready)
	lat := latency(a, f)
	if lat == 0 {
		return settledTrial
	}
	// Latency follows load when it fell with load per replica, by at least
	// a share of what load fell by, or now meets its target; or rose with
	// load (demand grew during the trial). Load that barely moved teaches
	// nothing. The share, not a fixed fall: on a loaded host a fixed delay
	// sheds the host's queueing when its load is spread (245 ms at 32 in
	// flight on one replica, 212 ms at 5 on each of five, in CI), which is
	// no reason to keep five replicas.
	loadDrop, latDrop := 1-load/t.Load, 1-float64(lat)/float64(t.Latency)
	fell := load <= loadFell*t.Load && (latDrop >= latencyFollows*loadDrop || meets(a, f))
	rose := load >= t.Load/loadFell && float64(lat) >= float64(t.Latency)/latencyFell
	if fell || rose || (load > loadFell*t.Load && load < t.Load/loadFell) {
		return settledTrial
	}
	if t.Doubted.IsZero() {
		t.Doubted = now
	}
	if now.Sub(t.Doubted) < max(a.UpStabilization, 2*a.Interval) {
		d.Wake = now.Add(a.Interval)
		return doubtful
	}
	d.change(t.From, now, ReasonNoEffect, "")
	d.State.NoEffect = &Verdict{Replicas: t.From, InFlight: max(t.InFlight, f.InFlight), Latency: t.Latency, Spec: obs.Spec, At: now}
	d.Message = fmt.Sprintf("%d -> %d: at %d replicas latency %s against %s at %d, while in flight per replica went %.1f -> %.1f; not scaling out for latency until in flight reaches %.0f",
		t.To, t.From, t.To, lat, t.Latency, t.From, t.Load, load, d.State.NoEffect.RetryAt())
	return noEffect
}

// latency is the latency figure with the largest share of its target.
func latency(a spec.Autoscale, f Figures) time.Duration {
	var worst time.Duration
	share := 0.0
	for _, m := range []struct{ got, target time.Duration }{{f.P95, a.P95}, {f.P99, a.P99}} {
		if m.target > 0 && m.got > 0 && float64(m.got)/float64(m.target) > share {
			worst, share = m.got, float64(m.got)/float64(m.target)
		}
	}
	return worst
}

// meets is whether every latency target is met.
func meets(a spec.Autoscale, f Figures) bool {
	return (a.P95 == 0 || f.P95 <= a.P95) && (a.P99 == 0 || f.P99 <= a.P99)
}

// RetryAt is the demand (requests in flight) at which latency may scale the
// service out again: the picture changed.
func (v Verdict) RetryAt() float64 { return pictureGrew * v.InFlight }
