package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

const ms = time.Millisecond

func TestKillTimes(t *testing.T) {
	got := killTimes(2*time.Second, 12*time.Second)
	want := []time.Duration{1 * time.Second, 3 * time.Second, 5 * time.Second, 7 * time.Second, 9 * time.Second, 11 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("every 2s for 12s: %v", got)
	}
	if got := killTimes(500*ms, 12*time.Second); len(got) != 24 || got[0] != 250*ms || got[23] != 11750*ms {
		t.Errorf("every 500ms for 12s: %d kills, %v", len(got), got)
	}
}

// TestVictimsRepeatForTheSameRound: two runs of a round pick the same replica whenever
// it runs in both, and a kill that differs does not shift the ones after it; another
// round picks otherwise.
func TestVictimsRepeatForTheSameRound(t *testing.T) {
	names := []string{"web-1", "web-2", "web-3"}
	all := func(string) bool { return true }
	a := newVictims(1, 1001, names)
	b := newVictims(1, 1001, []string{"web-3", "web-1", "web-2"})
	other := newVictims(1, 1002, names)
	var pa, pb, po []string
	for i := range 30 {
		pa = append(pa, a.pick(all))
		if i == 5 {
			// In b's run the replica a killed is still restarting.
			was := pa[i]
			pb = append(pb, b.pick(func(n string) bool { return n != was }))
		} else {
			pb = append(pb, b.pick(all))
		}
		po = append(po, other.pick(all))
	}
	if pa[5] == pb[5] {
		t.Errorf("kill 6 hit %s, which was not running", pb[5])
	}
	pb[5] = pa[5]
	if !reflect.DeepEqual(pa, pb) {
		t.Errorf("same seed and round, different victims:\n%v\n%v", pa, pb)
	}
	if reflect.DeepEqual(pa, po) {
		t.Error("another round picked the very same 30 victims")
	}
	seen := map[string]bool{}
	for _, v := range pa {
		seen[v] = true
	}
	if len(seen) != 3 {
		t.Errorf("victims %v: not every replica picked in 30 kills", seen)
	}
	if v := a.pick(func(string) bool { return false }); v != "" {
		t.Errorf("none running: picked %q", v)
	}
	if v := a.pick(func(n string) bool { return n == "web-2" }); v != "web-2" {
		t.Errorf("one running: picked %q", v)
	}
}

func req(k harness.ClientKind, post bool, from, took time.Duration, fail string) harness.Request {
	return harness.Request{Client: k, ID: slices.Index(harness.ClientKinds, k), Post: post, From: from, Took: took, Fail: fail}
}

// TestFailing: a client is without service from a failed request's start to the end of
// its next success, or of its last failure when none follows.
func TestFailing(t *testing.T) {
	r := func(from, took int, fail string) harness.Request {
		return harness.Request{From: time.Duration(from) * ms, Took: time.Duration(took) * ms, Fail: fail}
	}
	got := failing([]harness.Request{
		r(30, 5, "HTTP 502"), r(0, 10, ""), r(10, 20, ""), // out of order: sorted first
		r(35, 1, "HTTP 502"), r(36, 4, ""), // down 30..40
		r(40, 100, "timeout"), r(140, 10, "reset"), // down 40.. to the end of the last: 150
	})
	if got != 120*ms {
		t.Errorf("failing = %v, want 120ms (10 + 110)", got)
	}
	if failing(nil) != 0 || failing([]harness.Request{r(0, 1, "")}) != 0 {
		t.Error("no failure, no time failing")
	}
}

// TestTallyCountsPostsApart: a failed POST in flight while a kill was carried out may
// have reached the replica that died; one that was not in flight then is counted apart.
func TestTallyCountsPostsApart(t *testing.T) {
	rr := runResult{
		Elapsed: 10 * time.Second,
		Kills:   []killRecord{{At: 1000 * ms, Took: 5 * ms, Victim: "web-2"}, {At: 3000 * ms, Victim: ""}},
		AllDown: []harness.Span{{From: 5000 * ms, To: 5100 * ms}},
	}
	kinds := []harness.ClientKind{harness.KeepAlive, harness.Fresh}
	rr.tally(kinds, 1, []harness.Request{
		req(harness.KeepAlive, false, 0, 1*ms, ""),
		req(harness.KeepAlive, false, 990*ms, 20*ms, harness.FailReset),
		req(harness.KeepAlive, true, 998*ms, 4*ms, "HTTP 502"),    // in flight at the kill of web-2
		req(harness.Fresh, true, 2990*ms, 20*ms, harness.FailEOF), // at a kill with no victim: not excused
		req(harness.Fresh, true, 4000*ms, 10*ms, ""),              // a POST that worked
		req(harness.Fresh, false, 5050*ms, 2000*ms, "timeout"),    // while no replica answered
		req(harness.Fresh, false, 7100*ms, 3*ms, ""),
	})
	ka, fr, all := rr.Clients[0], rr.Clients[1], rr.All
	if ka.Client != "keepalive" || ka.Requests != 3 || ka.Failed != 2 || ka.Posts != 1 || ka.PostsFailed != 1 || ka.PostsFailedAtKill != 1 {
		t.Errorf("keepalive: %+v", ka)
	}
	if fr.Client != "fresh" || fr.Requests != 4 || fr.Failed != 2 || fr.Posts != 2 || fr.PostsFailed != 1 || fr.PostsFailedAtKill != 0 || fr.FailedAllDown != 1 {
		t.Errorf("fresh: %+v", fr)
	}
	if all.Requests != 7 || all.Failed != 4 || all.Failures.Line() != "1 EOF, 1 HTTP 502, 1 reset, 1 timeout" {
		t.Errorf("all: %+v (%s)", all, all.Failures.Line())
	}
	if all.Max != 2000*ms || all.P50 != 10*ms {
		t.Errorf("all: p50 %v max %v", all.P50, all.Max)
	}
	// keepalive: without service 990..1010, no success after; fresh: 2990..4010 (to the
	// end of the POST that worked), then 5050..7103.
	if ka.Failing != 20*ms || fr.Failing != 3073*ms || all.Failing != 3093*ms {
		t.Errorf("failing: keepalive %v, fresh %v, all %v", ka.Failing, fr.Failing, all.Failing)
	}
	if ka.ClientTime != 10*time.Second || all.ClientTime != 20*time.Second {
		t.Errorf("client time: keepalive %v, all %v", ka.ClientTime, all.ClientTime)
	}
	if got := postLine(all); got != "2/3 (1)" {
		t.Errorf("postLine = %q", got)
	}
}

// TestResultsPoolRunsByPartAndPeer: totals add up the runs of a part through a peer and
// take percentiles over all their requests, not medians of the runs'.
func TestResultsPoolRunsByPartAndPeer(t *testing.T) {
	kinds := []harness.ClientKind{harness.KeepAlive}
	run := func(part, peer string, lat []time.Duration, failed int) runResult {
		rr := runResult{Part: part, Peer: peer, Kills: []killRecord{{At: time.Hour, Victim: "web-1"}}}
		var reqs []harness.Request
		for i, d := range lat {
			fail := ""
			if i < failed {
				fail = harness.FailReset
			}
			reqs = append(reqs, req(harness.KeepAlive, false, 0, d, fail))
		}
		rr.tally(kinds, 1, reqs)
		return rr
	}
	res := &results{}
	res.add(run("p1", "tend", []time.Duration{1 * ms, 2 * ms}, 0))
	res.add(run("p1", "tend", []time.Duration{3 * ms, 100 * ms}, 1))
	res.add(run("p1", "nginx", []time.Duration{5 * ms}, 0))
	res.add(run("p2", "tend", []time.Duration{7 * ms}, 0))
	res.add(runResult{Part: "p1", Peer: "tend", Err: "replicas not ready"})
	res.finish()
	if len(res.Totals) != 3 || len(res.Runs) != 5 {
		t.Fatalf("%d totals, %d runs", len(res.Totals), len(res.Runs))
	}
	tt := res.Totals[0]
	if tt.Part != "p1" || tt.Peer != "tend" || tt.Runs != 2 || tt.Failing != 1 || tt.Kills != 2 {
		t.Errorf("total: %+v", tt)
	}
	if tt.All.Requests != 4 || tt.All.Failed != 1 || tt.All.P50 != 3*ms || tt.All.Max != 100*ms {
		t.Errorf("pooled: %+v", tt.All)
	}
	if len(tt.Clients) != 1 || tt.Clients[0].Requests != 4 {
		t.Errorf("by client: %+v", tt.Clients)
	}

	path := filepath.Join(t.TempDir(), "soak.json")
	if err := res.write(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var back struct {
		Totals []struct {
			Peer string
			All  struct {
				Requests int
				Failures map[string]int
				P99      int64 `json:"p99_ns"`
			}
		}
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Totals[0].All.Requests != 4 || back.Totals[0].All.Failures[harness.FailReset] != 1 || back.Totals[0].All.P99 != int64(100*ms) {
		t.Errorf("JSON totals: %+v", back.Totals[0])
	}
}

func TestKillsLine(t *testing.T) {
	got := killsLine([]killRecord{{At: 1000 * ms, Victim: "web-2"}, {At: 1500 * ms}, {At: 2000 * ms, Victim: "web-1", Err: "gone"}})
	if want := "web-2@1.00s none running@1.50s web-1@2.00s (failed: gone)"; got != want {
		t.Errorf("killsLine = %q, want %q", got, want)
	}
	if postsLine(10) != "one request in 10 a POST" || postsLine(0) != "GETs only" {
		t.Errorf("postsLine: %q, %q", postsLine(10), postsLine(0))
	}
}
