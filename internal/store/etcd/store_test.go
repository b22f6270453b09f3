package etcdstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/quarantine"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/rollout"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

func freeURL(t *testing.T) url.URL {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

// etcd starts a one-member etcd for the test and returns a client maker.
func etcd(t *testing.T) func() *clientv3.Client {
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	peer, client := freeURL(t), freeURL(t)
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready")
	}
	return func() *clientv3.Client {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{client.String()}, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

func open(t *testing.T, c *clientv3.Client, cfg Config) *Store {
	cfg.Client = c
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var now = time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)

func TestProjectsVersionsAndDelete(t *testing.T) {
	s := open(t, etcd(t)(), Config{MaxVersions: 3})
	if _, err := s.Project("shop"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("missing project: %v", err)
	}
	for i := 1; i <= 5; i++ {
		rec, err := s.PutProject(spec.Project{Name: "shop", Services: []spec.Service{{Name: "web", Replicas: i}}}, now)
		if err != nil || rec.Version != i {
			t.Fatalf("put %d: %+v %v", i, rec.Version, err)
		}
	}
	past, err := s.PastVersions("shop")
	if err != nil || len(past) != 3 || past[0].Version != 5 || past[2].Version != 3 || past[0].Project.Services[0].Replicas != 5 {
		t.Errorf("past versions %+v %v", past, err)
	}
	if _, err := s.PutProject(spec.Project{Name: "blog"}, now); err != nil {
		t.Fatal(err)
	}
	all, err := s.Projects()
	if err != nil || len(all) != 2 || all[0].Project.Name != "blog" {
		t.Errorf("projects %+v %v", all, err)
	}
	k := reconcile.SlotKey{Service: "web", Slot: 1}
	if err := s.PutHistory("shop", map[reconcile.SlotKey]reconcile.History{k: {Restarts: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCount("shop", "web", store.Count{Replicas: 4, Pinned: true, Updated: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProject("shop"); errs.KindOf(err) != errs.Conflict {
		t.Errorf("delete without the mark: %v", err)
	}
	if err := s.MarkDeleting("shop", true); err != nil {
		t.Fatal(err)
	}
	if rec, _ := s.Project("shop"); !rec.Deleting || !rec.Volumes {
		t.Errorf("mark %+v", rec)
	}
	if err := s.DeleteProject("shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Project("shop"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("deleted project: %v", err)
	}
	h, _ := s.History("shop")
	c, _ := s.Counts("shop")
	v, _ := s.PastVersions("shop")
	if len(h) != 0 || len(c) != 0 || len(v) != 0 {
		t.Errorf("left after delete: %v %v %v", h, c, v)
	}
}

func TestRecordsByServiceAndSlot(t *testing.T) {
	mk := etcd(t)
	a, b := open(t, mk(), Config{}), open(t, mk(), Config{})
	// Two hosts write different slots of one project: neither is lost.
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b} {
		wg.Go(func() {
			for n := range 20 {
				k := reconcile.SlotKey{Service: "web", Slot: i + 1}
				if err := s.PutHistory("shop", map[reconcile.SlotKey]reconcile.History{k: {Restarts: n + 1}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	h, err := a.History("shop")
	if err != nil || h[reconcile.SlotKey{Service: "web", Slot: 1}].Restarts != 20 || h[reconcile.SlotKey{Service: "web", Slot: 2}].Restarts != 20 {
		t.Errorf("history %+v %v", h, err)
	}
	if err := a.PutHistory("shop", map[reconcile.SlotKey]reconcile.History{{Service: "web", Slot: 1}: {}}); err != nil {
		t.Fatal(err)
	}
	if h, _ := b.History("shop"); len(h) != 1 {
		t.Errorf("a zero history is not deleted: %v", h)
	}
	if err := a.PutQuarantine("shop", map[string]quarantine.State{"pay": {Cause: "crash loop"}, "web": {}}); err != nil {
		t.Fatal(err)
	}
	if q, err := b.Quarantine("shop"); err != nil || len(q) != 1 || q["pay"].Cause != "crash loop" {
		t.Errorf("quarantine %+v %v", q, err)
	}
	if err := a.PutRollout("shop", "web", rollout.State{Target: "abc"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := b.Rollouts("shop"); r["web"].Target != "abc" {
		t.Errorf("rollouts %+v", r)
	}
	if err := a.PutRollout("shop", "web", rollout.State{}); err != nil {
		t.Fatal(err)
	}
	if r, _ := b.Rollouts("shop"); len(r) != 0 {
		t.Errorf("a zero rollout is not deleted: %+v", r)
	}
	if err := a.PutCount("shop", "web", store.Count{}); err != nil {
		t.Fatal(err)
	}
}

func TestJournal(t *testing.T) {
	mk := etcd(t)
	a, b := open(t, mk(), Config{MaxEntries: 50}), open(t, mk(), Config{MaxEntries: 50})
	fired := b.Appended()
	first, err := a.Append(store.Entry{Project: "shop", Service: "web", Action: "restart"}, store.Entry{Project: "blog", Action: "create"})
	if err != nil || first[0].Seq != 1 || first[1].Seq != 2 {
		t.Fatalf("append %+v %v", first, err)
	}
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Error("Appended of another host's store did not fire")
	}
	// Two hosts append at once: every number once, none skipped.
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for _, s := range []*Store{a, b} {
		wg.Go(func() {
			for i := range 20 {
				got, err := s.Append(store.Entry{Project: "shop", Action: fmt.Sprintf("a%d", i)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[got[0].Seq] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for n := uint64(3); n <= 42; n++ {
		if !seen[n] {
			t.Errorf("sequence %d not given (%d given)", n, len(seen))
		}
	}
	all, err := b.Journal(store.Query{})
	if err != nil || len(all) != 42 || all[0].Seq != 1 || all[41].Seq != 42 {
		t.Errorf("journal: %d entries, %v", len(all), err)
	}
	last, _ := b.Journal(store.Query{Project: "shop", Limit: 3})
	if len(last) != 3 || last[2].Seq != 42 || last[0].Seq != 40 {
		t.Errorf("limit 3: %+v", last)
	}
	after, _ := b.Journal(store.Query{After: 40})
	if len(after) != 2 {
		t.Errorf("after 40: %+v", after)
	}
	blog, _ := b.Journal(store.Query{Project: "blog"})
	if len(blog) != 1 || blog[0].Action != "create" {
		t.Errorf("filter: %+v", blog)
	}
	// Retention: past 50 entries the oldest go.
	for range 15 {
		if _, err := a.Append(store.Entry{Project: "shop", Action: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	all, _ = b.Journal(store.Query{})
	if len(all) != 50 || all[0].Seq != 8 || all[49].Seq != 57 {
		t.Errorf("after retention: %d entries, %d..%d", len(all), all[0].Seq, all[len(all)-1].Seq)
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	gone := freeURL(t)
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{gone.String()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := open(t, c, Config{Timeout: 300 * time.Millisecond})
	_, err = s.Projects()
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind != errs.Unavailable {
		t.Errorf("read with etcd gone: %v, want unavailable", err)
	}
}
