package etcdstore_test

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strings"
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
	etcdstore "github.com/tend-sh/tend/internal/store/etcd"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// startEtcd starts a one-member etcd on free ports of 127.0.0.1, in a
// fresh directory, stopped when the test ends.
func startEtcd(t *testing.T) *embed.Etcd {
	t.Helper()
	e, _ := startStoppableEtcd(t)
	return e
}

// startStoppableEtcd is startEtcd, with a stop for a test to call earlier.
func startStoppableEtcd(t *testing.T) (*embed.Etcd, func()) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // a test's etcd need not survive a power loss
	peer := url.URL{Scheme: "http", Host: freeAddr(t)}
	client := url.URL{Scheme: "http", Host: freeAddr(t)}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := sync.OnceFunc(e.Close) // a second Close panics
	t.Cleanup(stop)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready after 30s")
	}
	return e, stop
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newClient is a client of e, closed when the test ends: each is a host.
func newClient(t *testing.T, e *embed.Etcd) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Config().AdvertiseClientUrls[0].String()},
		DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// open makes a Store on cli, closed when the test ends.
func open(t *testing.T, cli *clientv3.Client, cfg etcdstore.Config) *etcdstore.Store {
	t.Helper()
	cfg.Client = cli
	s, err := etcdstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openOne is a Store on a fresh etcd of its own.
func openOne(t *testing.T, cfg etcdstore.Config) *etcdstore.Store {
	t.Helper()
	return open(t, newClient(t, startEtcd(t)), cfg)
}

// project is a project of one service whose image names the version, so
// versions are told apart.
func project(name string, v int) spec.Project {
	return spec.Project{Name: name, Services: []spec.Service{{Name: "web", Image: fmt.Sprintf("web:%d", v), Replicas: 1}}}
}

func mustPut(t *testing.T, s store.Store, name string) store.Record {
	t.Helper()
	rec, err := s.PutProject(project(name, 1), t0)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func mustAppend(t *testing.T, s store.Store, entries ...store.Entry) []store.Entry {
	t.Helper()
	out, err := s.Append(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func seqsOf(entries []store.Entry) []uint64 {
	var out []uint64
	for _, e := range entries {
		out = append(out, e.Seq)
	}
	return out
}

func TestCloseStopsTheWatchAndLeavesTheClient(t *testing.T) {
	e := startEtcd(t)
	cli := newClient(t, e)
	s, err := etcdstore.New(etcdstore.Config{Client: cli})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Close waits for the watch to return, so none may be left.
	buf := make([]byte, 1<<22)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "store/etcd.(*Store).watchJournal") {
		t.Errorf("the journal watch runs after Close:\n%s", stacks)
	}
	s2 := open(t, cli, etcdstore.Config{})
	if _, err := s2.PutProject(project("demo", 1), t0); err != nil {
		t.Errorf("a Store on the client after the first closed: %v (Close must leave the client open)", err)
	}
}

func TestPrefixesApart(t *testing.T) {
	cli := newClient(t, startEtcd(t))
	a := open(t, cli, etcdstore.Config{Prefix: "/a"})
	b := open(t, cli, etcdstore.Config{Prefix: "/b/"})
	mustPut(t, a, "demo")
	mustAppend(t, a, store.Entry{Project: "demo", Action: "up"})
	if recs, err := b.Projects(); err != nil || len(recs) != 0 {
		t.Errorf("store under /b/ sees projects %v, %v of the one under /a/", recs, err)
	}
	if got := mustAppend(t, b, store.Entry{Project: "demo", Action: "up"}); got[0].Seq != 1 {
		t.Errorf("first entry under /b/ numbered %d, want 1: each prefix has its own journal", got[0].Seq)
	}
	resp, err := cli.Get(t.Context(), "/a/projects/demo")
	if err != nil || len(resp.Kvs) != 1 {
		t.Errorf("Prefix /a: key /a/projects/demo: %v, %v", resp, err)
	}
}

func TestNewNeedsAClient(t *testing.T) {
	if _, err := etcdstore.New(etcdstore.Config{}); err == nil {
		t.Error("New without a client: no error")
	}
}

// Every call fails as Unavailable once etcd is gone, at its Timeout.
func TestUnavailable(t *testing.T) {
	e, stop := startStoppableEtcd(t)
	cli := newClient(t, e)
	s := open(t, cli, etcdstore.Config{Timeout: 300 * time.Millisecond})
	mustPut(t, s, "demo")
	stop()
	calls := map[string]func() error{
		"PutProject":    func() error { _, err := s.PutProject(project("demo", 2), t0); return err },
		"MarkDeleting":  func() error { return s.MarkDeleting("demo", false) },
		"DeleteProject": func() error { return s.DeleteProject("demo") },
		"Project":       func() error { _, err := s.Project("demo"); return err },
		"Projects":      func() error { _, err := s.Projects(); return err },
		"History":       func() error { _, err := s.History("demo"); return err },
		"PutHistory": func() error {
			return s.PutHistory("demo", map[reconcile.SlotKey]reconcile.History{{Service: "web", Slot: 1}: {Restarts: 1}})
		},
		"Counts":        func() error { _, err := s.Counts("demo"); return err },
		"PutCount":      func() error { return s.PutCount("demo", "web", store.Count{Updated: t0}) },
		"Quarantine":    func() error { _, err := s.Quarantine("demo"); return err },
		"PutQuarantine": func() error { return s.PutQuarantine("demo", map[string]quarantine.State{"web": {Since: t0}}) },
		"Rollouts":      func() error { _, err := s.Rollouts("demo"); return err },
		"PutRollout":    func() error { return s.PutRollout("demo", "web", rollout.State{Target: "x"}) },
		"PastVersions":  func() error { _, err := s.PastVersions("demo"); return err },
		"Append":        func() error { _, err := s.Append(store.Entry{Project: "demo", Action: "up"}); return err },
		"Journal":       func() error { _, err := s.Journal(store.Query{}); return err },
		"New": func() error {
			_, err := etcdstore.New(etcdstore.Config{Client: cli, Timeout: 300 * time.Millisecond})
			return err
		},
	}
	for _, name := range slices.Sorted(maps.Keys(calls)) {
		err := calls[name]() // without its Timeout, a call would wait for etcd for ever
		if k := errs.KindOf(err); k != errs.Unavailable {
			t.Errorf("%s with etcd stopped: err = %v (%s), want unavailable", name, err, k)
		}
	}
}
