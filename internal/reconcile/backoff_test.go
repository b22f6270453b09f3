package reconcile_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/spec"
)

func TestBackoffSchedule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delay  time.Duration // restart_policy.delay
		b      spec.Backoff
		expect []time.Duration // before jitter, for n = 1, 2, ...
	}{
		{
			name:   "doubles from initial to max",
			b:      spec.Backoff{Initial: time.Second, Max: time.Minute},
			expect: secs(1, 2, 4, 8, 16, 32, 60, 60, 60, 60),
		},
		{
			name:   "starts from delay when it exceeds initial",
			delay:  5 * time.Second,
			b:      spec.Backoff{Initial: time.Second, Max: time.Minute},
			expect: secs(5, 10, 20, 40, 60, 60),
		},
		{
			name:   "initial wins over a smaller delay",
			delay:  time.Second,
			b:      spec.Backoff{Initial: 3 * time.Second, Max: time.Minute},
			expect: secs(3, 6, 12, 24, 48, 60),
		},
		{
			name:   "the engine's defaults",
			b:      spec.Backoff{Initial: spec.DefaultBackoffInitial, Max: spec.DefaultBackoffMax},
			expect: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second},
		},
		{
			name:   "delay above max is held to max",
			delay:  2 * time.Minute,
			b:      spec.Backoff{Initial: time.Second, Max: time.Minute},
			expect: secs(60, 60, 60),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := spec.RestartPolicy{Condition: spec.RestartAny, Delay: tc.delay}
			for _, seed := range []string{"web/1", "web/2", "db/1"} {
				if d := reconcile.Backoff(p, tc.b, 0, seed); d != 0 {
					t.Errorf("%s: first restart waits %s, want 0", seed, d)
				}
				for i, base := range tc.expect {
					n := i + 1
					d := reconcile.Backoff(p, tc.b, n, seed)
					lo, hi := base-base/10, base+base/10
					if d < lo || d > hi || d > tc.b.Max {
						t.Errorf("%s: restart %d waits %s, want %s ±10%% and at most %s", seed, n+1, d, base, tc.b.Max)
					}
					if again := reconcile.Backoff(p, tc.b, n, seed); again != d {
						t.Errorf("%s: restart %d waits %s, then %s: not deterministic", seed, n+1, d, again)
					}
				}
			}
		})
	}
}

// The jitter spreads the replicas of a service so they do not restart in step.
func TestBackoffSpread(t *testing.T) {
	p := spec.RestartPolicy{Condition: spec.RestartAny}
	b := spec.Backoff{Initial: time.Second, Max: time.Minute}
	for n := 1; n <= 4; n++ {
		seen := map[time.Duration]bool{}
		for slot := 1; slot <= 20; slot++ {
			seen[reconcile.Backoff(p, b, n, fmt.Sprintf("web/%d", slot))] = true
		}
		if len(seen) < 15 {
			t.Errorf("restart %d: 20 replicas wait only %d distinct durations", n+1, len(seen))
		}
	}
}

// A very long streak neither overflows nor leaves the cap.
func TestBackoffLongStreak(t *testing.T) {
	p := spec.RestartPolicy{Condition: spec.RestartAny}
	b := spec.Backoff{Initial: time.Second, Max: 5 * time.Minute}
	for _, n := range []int{64, 1000, 1 << 20} {
		if d := reconcile.Backoff(p, b, n, "web/1"); d <= 0 || d > b.Max || d < b.Max-b.Max/10 {
			t.Errorf("restart %d waits %s, want within 10%% below %s", n+1, d, b.Max)
		}
	}
}

func secs(ss ...int) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = time.Duration(s) * time.Second
	}
	return out
}
