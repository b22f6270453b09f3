package etcdstore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/quarantine"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/rollout"
	"github.com/tend-sh/tend/internal/scale"
	"github.com/tend-sh/tend/internal/store"
	etcdstore "github.com/tend-sh/tend/internal/store/etcd"
)

func TestHistory(t *testing.T) {
	s := openOne(t, etcdstore.Config{})
	web1 := reconcile.SlotKey{Service: "web", Slot: 1}
	web12 := reconcile.SlotKey{Service: "web", Slot: 12}
	db := reconcile.SlotKey{Service: "db.main", Slot: 1}
	full := reconcile.History{Container: "abc", Streak: []time.Time{t0, t0.Add(time.Second)}, Restarts: 7,
		Settled: t0.Add(2 * time.Second), Done: true, GaveUp: true}
	put := map[reconcile.SlotKey]reconcile.History{web1: full, web12: {Container: "def"}, db: {Restarts: 1}}
	if err := s.PutHistory("demo", put); err != nil {
		t.Fatal(err)
	}
	if err := s.PutHistory("other", map[reconcile.SlotKey]reconcile.History{web1: {Container: "zzz"}}); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, s, "demo", put)

	// A zero History deletes the slot's memory; the others stay as they were.
	if err := s.PutHistory("demo", map[reconcile.SlotKey]reconcile.History{web12: {}, db: {Restarts: 2}}); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, s, "demo", map[reconcile.SlotKey]reconcile.History{web1: full, db: {Restarts: 2}})
	if err := s.PutHistory("demo", nil); err != nil {
		t.Errorf("PutHistory of nothing: %v", err)
	}
	if h, err := s.History("nope"); err != nil || len(h) != 0 {
		t.Errorf("History(nope) = %v, %v; want empty", h, err)
	}
}

// More slots than one etcd transaction takes are all written.
func TestPutHistoryManySlots(t *testing.T) {
	s := openOne(t, etcdstore.Config{})
	want := map[reconcile.SlotKey]reconcile.History{}
	for i := 1; i <= 300; i++ {
		want[reconcile.SlotKey{Service: "web", Slot: i}] = reconcile.History{Container: fmt.Sprint("c", i), Restarts: i}
	}
	if err := s.PutHistory("demo", want); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, s, "demo", want)
}

// Two hosts writing different slots of one project lose neither's writes.
func TestPutHistoryFromTwoHosts(t *testing.T) {
	e := startEtcd(t)
	hosts := []*etcdstore.Store{open(t, newClient(t, e), etcdstore.Config{}), open(t, newClient(t, e), etcdstore.Config{})}
	const rounds = 20
	var wg sync.WaitGroup
	for i, s := range hosts {
		wg.Go(func() {
			key := reconcile.SlotKey{Service: "web", Slot: i + 1}
			for r := 1; r <= rounds; r++ {
				h := reconcile.History{Container: fmt.Sprintf("host%d", i), Restarts: r}
				if err := s.PutHistory("demo", map[reconcile.SlotKey]reconcile.History{key: h}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkHistory(t, hosts[0], "demo", map[reconcile.SlotKey]reconcile.History{
		{Service: "web", Slot: 1}: {Container: "host0", Restarts: rounds},
		{Service: "web", Slot: 2}: {Container: "host1", Restarts: rounds},
	})
}

func checkHistory(t *testing.T, s store.Store, project string, want map[reconcile.SlotKey]reconcile.History) {
	t.Helper()
	got, err := s.History(project)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("History(%s) has %d slots, want %d: %+v", project, len(got), len(want), got)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !g.Equal(w) {
			t.Errorf("History(%s)[%s] = %+v, want %+v", project, k, g, w)
		}
	}
}

func TestCounts(t *testing.T) {
	s := openOne(t, etcdstore.Config{})
	if err := s.PutCount("p", "web", store.Count{Scale: scale.State{Replicas: 4}, Updated: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCount("p", "api", store.Count{Pinned: true, Replicas: 2, FileReplicas: 1, Updated: t0}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "p") // a later `tend up` leaves the counts
	got, err := s.Counts("p")
	if err != nil || len(got) != 2 || got["web"].Scale.Replicas != 4 || !got["api"].Pinned || got["api"].Replicas != 2 ||
		got["api"].FileReplicas != 1 || !got["web"].Updated.Equal(t0) {
		t.Fatalf("Counts(p) = %+v, %v", got, err)
	}
	if err := s.PutCount("p", "api", store.Count{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Counts("p"); err != nil || len(got) != 1 {
		t.Errorf("after a zero Count of api: %+v, %v; want web's only", got, err)
	}
	if got, err := s.Counts("nope"); err != nil || len(got) != 0 {
		t.Errorf("Counts(nope) = %+v, %v", got, err)
	}
}

func TestQuarantine(t *testing.T) {
	s := openOne(t, etcdstore.Config{})
	web := quarantine.State{Phase: "quarantined", Since: t0, Began: t0, Cause: "crash loop", Retry: time.Minute, TrialSlot: 2, Trials: 1}
	if err := s.PutQuarantine("p", map[string]quarantine.State{"web": web, "api": {Since: t0}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Quarantine("p")
	if err != nil || len(got) != 2 || !got["web"].Since.Equal(t0) || got["web"].Cause != web.Cause ||
		got["web"].Retry != time.Minute || got["web"].Trials != 1 {
		t.Fatalf("Quarantine(p) = %+v, %v", got, err)
	}
	if err := s.PutQuarantine("p", map[string]quarantine.State{"api": {}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Quarantine("p"); err != nil || len(got) != 1 || got["web"].Cause != web.Cause {
		t.Errorf("after a zero State of api: %+v, %v; want web's only", got, err)
	}
	if err := s.PutQuarantine("p", nil); err != nil {
		t.Errorf("PutQuarantine of nothing: %v", err)
	}
}

func TestRollouts(t *testing.T) {
	s := openOne(t, etcdstore.Config{})
	st := rollout.State{Target: "h2", From: "h1", Started: t0, Step: 2, Slots: []int{3, 4}}
	if err := s.PutRollout("p", "web", st); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRollout("p", "api", rollout.State{Target: "a2"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Rollouts("p")
	if w := got["web"]; err != nil || len(got) != 2 || w.Target != "h2" || w.From != "h1" || w.Step != 2 ||
		len(w.Slots) != 2 || !w.Started.Equal(t0) {
		t.Fatalf("Rollouts(p) = %+v, %v", got, err)
	}
	if err := s.PutRollout("p", "web", rollout.State{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Rollouts("p"); err != nil || len(got) != 1 || got["api"].Target != "a2" {
		t.Errorf("after a State without Target for web: %+v, %v; want api's only", got, err)
	}
}
