package proxy

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/testwait"
)

// TestHungReplicaIsCutAndRetried: a replica that takes requests and answers
// none (a stopped process: its kernel still accepts) is taken out of
// rotation once two of its requests have waited past the stall floor with
// nothing heard; the GETs waiting on it are cut and answered by the other
// replica, the supervisor is told (Hung, an eject event with reason hung),
// and new requests go to the replica that answers.
func TestHungReplicaIsCutAndRetried(t *testing.T) {
	h := newFakeHarness(t, Config{ResponseTimeout: time.Minute})
	stop := make(chan struct{})
	defer close(stop)
	var arrived atomic.Int32
	stuck := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	})
	var hits counter
	fine := backendServer(t, "web/2", named("web/2", &hits))
	r := routeOf(t, "web", HTTP, stuck, fine)
	h.sync(r)

	var answers []<-chan result
	for range 8 {
		answers = append(answers, h.getAsync(url(r)))
	}
	testwait.Eventually(t, "two requests waiting on the stuck replica", func() bool { return arrived.Load() >= 2 })
	if h.m.Hung(stuck.ID) {
		t.Fatal("hung before any silence")
	}
	for range 5 { // the housekeeping looks once a second
		h.clk.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	testwait.Eventually(t, "the stuck replica found hung", func() bool { return h.m.Hung(stuck.ID) })
	for i, ch := range answers {
		if got := wait(t, ch, "an answer"); got.code != 200 || got.body != "web/2" {
			t.Errorf("request %d: %+v, want it answered by web/2", i, got)
		}
	}
	evs := h.eventsOf(EventEject)
	if len(evs) != 1 || evs[0].Reason != ReasonHung || evs[0].ID != stuck.ID || !strings.Contains(evs[0].Message, "no answer for") {
		t.Errorf("eject events %+v, want one with reason hung for %s", evs, stuck.ID)
	}
	before := arrived.Load()
	for range 20 {
		if code, body := h.get(url(r)); code != 200 || body != "web/2" {
			t.Fatalf("after the ejection: %d %q", code, body)
		}
	}
	if n := arrived.Load() - before; n != 0 {
		t.Errorf("the hung replica got %d more requests", n)
	}
	for _, b := range h.pool(r).all {
		if n := b.awaiting.Load(); n != 0 {
			t.Errorf("%s: %d attempts still counted waiting for a head", b.replica, n)
		}
	}
}

// TestSlowReplicaAloneIsReadmittedWhenItAnswers: with no other replica, the
// requests waiting on one found hung are not cut (an answer that is only
// slow may come); when it comes, the replica is back in rotation at once.
func TestSlowReplicaAloneIsReadmittedWhenItAnswers(t *testing.T) {
	h := newFakeHarness(t, Config{ResponseTimeout: time.Minute})
	release := make(chan struct{})
	var arrived atomic.Int32
	slow := backendServer(t, "web/1", func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		<-release
		w.Write([]byte("late"))
	})
	r := routeOf(t, "web", HTTP, slow)
	h.sync(r)
	a, b := h.getAsync(url(r)), h.getAsync(url(r))
	testwait.Eventually(t, "both requests at the replica", func() bool { return arrived.Load() == 2 })
	for range 5 {
		h.clk.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	testwait.Eventually(t, "the silent replica found hung", func() bool { return h.m.Hung(slow.ID) })
	close(release)
	for _, ch := range []<-chan result{a, b} {
		if got := wait(t, ch, "the slow answer"); got.code != 200 || got.body != "late" {
			t.Errorf("got %+v, want the replica's late answer: not cut with no other replica", got)
		}
	}
	testwait.Eventually(t, "readmitted", func() bool { return !h.m.Hung(slow.ID) })
	if evs := h.eventsOf(EventReadmit); len(evs) != 1 || evs[0].Reason != ReasonHung {
		t.Errorf("readmit events %+v, want one with reason hung", evs)
	}
	if code, body := h.get(url(r)); code != 200 || body != "late" {
		t.Errorf("after it answered: %d %q", code, body)
	}
}

// TestOneLongPollIsNotAHang: one request that waits long (a long poll) on
// a replica that answers nothing else is no evidence of a hang.
func TestOneLongPollIsNotAHang(t *testing.T) {
	h := newFakeHarness(t, Config{ResponseTimeout: time.Minute})
	stop := make(chan struct{})
	defer close(stop)
	arrived := make(chan struct{}, 1)
	poll := backendServer(t, "poll/1", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	})
	r := routeOf(t, "poll", HTTP, poll)
	h.sync(r)
	res := h.getAsync(url(r))
	wait(t, arrived, "the long poll to arrive")
	for range 5 {
		h.clk.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	if h.m.Hung(poll.ID) || len(h.eventsOf(EventEject)) != 0 {
		t.Fatalf("one long poll made its replica hung: %+v", h.eventsOf(EventEject))
	}
	select {
	case got := <-res:
		t.Fatalf("the long poll was answered %+v", got)
	default:
	}
}
