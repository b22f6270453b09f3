package proxy

import (
	"testing"
	"time"
)

func TestPickOnlyEligible(t *testing.T) {
	bs := threeBackends()
	bs[1].Ready = false
	p := testPool(t, ejectPolicy{after: 5, base: time.Second, max: time.Minute}, nil, bs...)
	for range 200 {
		if b := p.pick(testNow()); b == nil || b.id == "b" {
			t.Fatalf("picked %v", b)
		}
	}
	a := backendByID(p, "a")
	for range 50 {
		if b := p.pickExcept(testNow(), a); b == nil || b.id != "c" {
			t.Fatalf("skipping a picked %v", b)
		}
	}
	// A retry after two failed attempts finds the one backend left.
	p2 := testPool(t, ejectPolicy{after: 5, base: time.Second, max: time.Minute}, nil, threeBackends()...)
	for range 50 {
		if b := p2.pickExcept(testNow(), backendByID(p2, "a"), backendByID(p2, "c")); b == nil || b.id != "b" {
			t.Fatalf("skipping a and c picked %v", b)
		}
	}
	seen := map[string]bool{}
	for range 200 {
		seen[p2.pick(testNow()).id] = true
	}
	if len(seen) != 3 {
		t.Fatalf("200 picks over three equal backends chose only %v", seen)
	}
	p.drain("c")
	if b := p.pickExcept(testNow(), a); b != nil {
		t.Fatalf("picked %s with a skipped and c draining", b.id)
	}
	p.update(nil, func(string) bool { return false })
	if b := p.pick(testNow()); b != nil {
		t.Fatalf("picked %s from an empty pool", b.id)
	}
}

func TestPickTakesTurnsButSkipsASlowReplica(t *testing.T) {
	now := testNow()
	// picks counts which backend n picks at now choose, by ID.
	picks := func(p *pool, n int, now int64) map[string]int {
		got := map[string]int{}
		for range n {
			got[p.pick(now).id]++
		}
		return got
	}
	t.Run("equals take turns", func(t *testing.T) {
		p := testPool(t, ejectPolicy{after: 5}, nil, threeBackends()...)
		for _, b := range p.set.Load().bs {
			b.reset(now, float64(time.Millisecond))
		}
		if got := picks(p, 300, now); got["a"] != 100 || got["b"] != 100 || got["c"] != 100 {
			t.Fatalf("300 picks over three equal backends: %v", got)
		}
	})
	t.Run("a clearly slower one gives its turn away", func(t *testing.T) {
		p := testPool(t, ejectPolicy{after: 5}, nil, threeBackends()...)
		latency := map[string]time.Duration{"a": 20 * time.Millisecond, "b": time.Millisecond, "c": time.Millisecond}
		got := map[string]int{}
		for range 300 { // each answer a sample
			b := p.pick(now)
			got[b.id]++
			b.observe(now, latency[b.id])
		}
		// a's first turn measures it; its later turns go to b or c at random.
		if got["a"] != 1 || got["b"] < 110 || got["c"] < 110 {
			t.Fatalf("a 20 ms backend among two of 1 ms, 300 picks at once: %v", got)
		}
		// One request again once its latest sample is probeAfter old.
		later := now + int64(probeAfter) + 1
		if got := picks(p, 30, later); got["a"] != 1 {
			t.Fatalf("a 20 ms backend %s after its last sample: %v of the next 30", probeAfter, got)
		}
	})
	t.Run("one slow for a moment is back once sampled again", func(t *testing.T) {
		p := testPool(t, ejectPolicy{after: 5}, nil, threeBackends()...)
		a := backendByID(p, "a")
		a.reset(now, float64(6*time.Millisecond)) // one 20 ms sample on 1 ms
		backendByID(p, "b").reset(now, float64(2*time.Millisecond))
		backendByID(p, "c").reset(now, float64(2*time.Millisecond))
		if got := picks(p, 30, now); got["a"] != 0 {
			t.Fatalf("a 6 ms backend among two of 2 ms: %v", got)
		}
		later := now + int64(probeAfter) + 1
		if got := picks(p, 3, later); got["a"] != 1 {
			t.Fatalf("%s after its last sample, the 6 ms backend's turn: %v", probeAfter, got)
		}
		a.observe(later, 2*time.Millisecond)
		a.observe(later, 2*time.Millisecond)
		if got := picks(p, 30, later); got["a"] != 10 {
			t.Fatalf("sampled again at 2 ms: %v of the next 30", got)
		}
	})
	t.Run("a little slower keeps its turn", func(t *testing.T) {
		p := testPool(t, ejectPolicy{after: 5}, nil, threeBackends()[:2]...)
		backendByID(p, "a").reset(now, float64(1500*time.Microsecond))
		backendByID(p, "b").reset(now, float64(time.Millisecond))
		if got := picks(p, 100, now); got["a"] != 50 {
			t.Fatalf("1.5 ms against 1 ms: %v", got)
		}
	})
	t.Run("one that stopped answering gives its turn away", func(t *testing.T) {
		p := testPool(t, ejectPolicy{after: 5}, nil, threeBackends()[:2]...)
		a, b := backendByID(p, "a"), backendByID(p, "b")
		a.reset(now-int64(100*time.Millisecond), float64(time.Millisecond))
		a.inflight.Store(3) // since 100 ms, with no answer
		b.reset(now, float64(time.Millisecond))
		b.inflight.Store(5)
		if got := picks(p, 100, now); got["a"] != 0 {
			t.Fatalf("a backend silent for 100 ms with requests in flight: %v", got)
		}
	})
	t.Run("an idle slow backend gets its turn again once its estimate decays", func(t *testing.T) {
		p := testPool(t, ejectPolicy{after: 5}, nil, threeBackends()[:2]...)
		a, b := backendByID(p, "a"), backendByID(p, "b")
		a.reset(now, float64(failSample))
		b.reset(now, float64(time.Millisecond))
		if got := picks(p, 10, now); got["a"] != 0 {
			t.Fatalf("a 1 s estimate against 1 ms: %v", got)
		}
		later := now + int64(60*time.Second)
		b.observe(later, time.Millisecond)
		if got := picks(p, 10, later); got["a"] != 5 {
			t.Fatalf("a 1 s estimate 12 half-lives old against 1 ms: %v", got)
		}
	})
}

func TestObserveMovesTheEstimate(t *testing.T) {
	p := testPool(t, ejectPolicy{after: 5}, nil, threeBackends()[:1]...)
	a := backendByID(p, "a")
	now := testNow()
	a.reset(now, float64(10*time.Millisecond))
	a.observe(now, 20*time.Millisecond)
	if got := time.Duration(a.estimate(now)); got != 13*time.Millisecond {
		t.Fatalf("estimate %s, want 10 ms + 0.3 × 10 ms", got)
	}
	if got := time.Duration(a.estimate(now + int64(ewmaHalfLife))); got != 6500*time.Microsecond {
		t.Fatalf("estimate a half-life later %s", got)
	}
}

func TestUpdateKeepsStateAndAddsFreshBackends(t *testing.T) {
	bs := threeBackends()
	p := testPool(t, ejectPolicy{after: 5}, nil, bs[:2]...)
	a, b := backendByID(p, "a"), backendByID(p, "b")
	a.reset(testNow(), float64(4*time.Millisecond))
	b.reset(testNow(), float64(2*time.Millisecond))
	b.inflight.Store(1) // b leaves with a request in flight
	p.update([]Backend{bs[0], bs[2]}, func(string) bool { return false })
	if backendByID(p, "a") != a {
		t.Fatal("a kept backend was replaced")
	}
	if len(p.gone) != 1 || p.gone[0].id != "b" {
		t.Fatalf("b was not kept as gone; gone = %v", p.gone)
	}
	c := backendByID(p, "c")
	if e := time.Duration(c.estimate(testNow())); e < 1900*time.Microsecond || e > 2*time.Millisecond {
		t.Fatalf("a new backend starts at %s, want about the best of the others", e)
	}
	// A moved container (same ID, new address) is a new backend.
	moved := bs[0]
	moved.Addr = bs[2].Addr
	p.update([]Backend{moved, bs[2]}, func(string) bool { return false })
	if backendByID(p, "a") == a {
		t.Fatal("a backend whose address changed was kept")
	}
}
