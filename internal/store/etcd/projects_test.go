package etcdstore_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/quarantine"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/rollout"
	"github.com/tend-sh/tend/internal/store"
	etcdstore "github.com/tend-sh/tend/internal/store/etcd"
)

func versionsOf(t *testing.T, s store.Store, name string) []int {
	t.Helper()
	recs, err := s.PastVersions(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, r := range recs {
		out = append(out, r.Version)
	}
	return out
}

func TestPutProjectVersions(t *testing.T) {
	s := openOne(t, etcdstore.Config{MaxVersions: 3})
	for v := 1; v <= 5; v++ {
		rec, err := s.PutProject(project("demo", v), t0.Add(time.Duration(v)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Version != v || rec.Deleting {
			t.Fatalf("put %d: record %+v, want version %d, not deleting", v, rec, v)
		}
	}
	rec, err := s.Project("demo")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != 5 || rec.Project.Services[0].Image != "web:5" || !rec.Updated.Equal(t0.Add(5*time.Second)) {
		t.Errorf("Project(demo) = %+v, want version 5 of web:5 updated at %s", rec, t0.Add(5*time.Second))
	}
	past, err := s.PastVersions("demo")
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for _, r := range past {
		images = append(images, r.Project.Services[0].Image)
	}
	if want := []string{"web:5", "web:4", "web:3"}; !slices.Equal(images, want) {
		t.Errorf("PastVersions images %v, want %v (MaxVersions 3, newest first)", images, want)
	}
	if got, want := versionsOf(t, s, "demo"), []int{5, 4, 3}; !slices.Equal(got, want) {
		t.Errorf("PastVersions numbers %v, want %v", got, want)
	}
	if v, err := s.PastVersions("nope"); err != nil || len(v) != 0 {
		t.Errorf("PastVersions(nope) = %v, %v; want none", v, err)
	}
}

// Hosts that put one project at once each get a version of their own.
func TestPutProjectConcurrently(t *testing.T) {
	e := startEtcd(t)
	hosts := []*etcdstore.Store{open(t, newClient(t, e), etcdstore.Config{MaxVersions: 100}),
		open(t, newClient(t, e), etcdstore.Config{MaxVersions: 100})}
	const puts = 15
	versions := make([][]int, len(hosts))
	var wg sync.WaitGroup
	for i, s := range hosts {
		wg.Go(func() {
			for range puts {
				rec, err := s.PutProject(project("demo", i), t0)
				if err != nil {
					t.Error(err)
					return
				}
				versions[i] = append(versions[i], rec.Version)
			}
		})
	}
	wg.Wait()
	all := slices.Sorted(slices.Values(slices.Concat(versions...)))
	for i, v := range all {
		if v != i+1 {
			t.Fatalf("versions given %v, want 1..%d each once", all, 2*puts)
		}
	}
	if got := versionsOf(t, hosts[0], "demo"); len(got) != 2*puts {
		t.Errorf("%d versions kept, want %d", len(got), 2*puts)
	}
}

func TestProjects(t *testing.T) {
	s := openOne(t, etcdstore.Config{})
	if recs, err := s.Projects(); err != nil || len(recs) != 0 {
		t.Fatalf("empty store: Projects() = %v, %v", recs, err)
	}
	for _, name := range []string{"web", "demo"} {
		mustPut(t, s, name)
	}
	recs, err := s.Projects()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Project.Name)
	}
	if want := []string{"demo", "web"}; !slices.Equal(names, want) {
		t.Errorf("Projects() names %v, want %v", names, want)
	}
	_, err = s.Project("nope")
	if errs.KindOf(err) != errs.NotFound || err.Error() != `project "nope" not found` {
		t.Errorf("Project(nope): err = %v (%s), want the not-found of bolt: project \"nope\" not found", err, errs.KindOf(err))
	}
}

func TestDeleteProject(t *testing.T) {
	s := openOne(t, etcdstore.Config{})
	mustPut(t, s, "demo")
	mustPut(t, s, "demo2") // shares a prefix with demo: must survive its deletion
	hist := map[reconcile.SlotKey]reconcile.History{{Service: "web", Slot: 1}: {Container: "abc", Restarts: 1}}
	for _, name := range []string{"demo", "demo2"} {
		if err := s.PutHistory(name, hist); err != nil {
			t.Fatal(err)
		}
		if err := s.PutCount(name, "web", store.Count{Replicas: 3, Pinned: true, Updated: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutQuarantine(name, map[string]quarantine.State{"web": {Since: t0}}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutRollout(name, "web", rollout.State{Target: "web:2"}); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, s, store.Entry{Project: "demo", Action: "up"})

	if err := s.MarkDeleting("demo", true); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDeleting("demo", false); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Project("demo")
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Deleting || !rec.Volumes || rec.Version != 1 {
		t.Errorf("after MarkDeleting(true) then (false): %+v, want version 1 deleting with volumes (a request to remove volumes sticks)", rec)
	}
	if err := s.DeleteProject("demo"); err != nil {
		t.Fatal(err)
	}

	if _, err := s.Project("demo"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("Project after delete: err = %v, want not-found", err)
	}
	for name, want := range map[string]int{"demo": 0, "demo2": 1} {
		h, err1 := s.History(name)
		c, err2 := s.Counts(name)
		q, err3 := s.Quarantine(name)
		r, err4 := s.Rollouts(name)
		v := versionsOf(t, s, name)
		if err := errorsOf(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		if len(h) != want || len(c) != want || len(q) != want || len(r) != want || len(v) != want {
			t.Errorf("%s after deleting demo: %d slots, %d counts, %d quarantines, %d rollouts, %d versions; want %d of each",
				name, len(h), len(c), len(q), len(r), len(v), want)
		}
	}
	if j, _ := s.Journal(store.Query{Project: "demo"}); len(j) != 1 {
		t.Errorf("journal after delete has %d entries of demo, want 1: the journal stays", len(j))
	}
}

func errorsOf(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func TestDeleteProjectErrors(t *testing.T) {
	cli := newClient(t, startEtcd(t))
	tests := []struct {
		name  string
		setup func(*testing.T, store.Store)
		want  errs.Kind
	}{
		{name: "missing", setup: func(*testing.T, store.Store) {}, want: errs.NotFound},
		{name: "not marked deleting", setup: func(t *testing.T, s store.Store) { mustPut(t, s, "demo") }, want: errs.Conflict},
		{name: "brought up again after the mark", setup: func(t *testing.T, s store.Store) {
			mustPut(t, s, "demo")
			if err := s.MarkDeleting("demo", false); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, "demo")
		}, want: errs.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, cli, etcdstore.Config{Prefix: "/" + t.Name() + "/"})
			tt.setup(t, s)
			if err := s.DeleteProject("demo"); errs.KindOf(err) != tt.want {
				t.Errorf("DeleteProject: err = %v (%s), want %s", err, errs.KindOf(err), tt.want)
			}
		})
	}
	s := open(t, cli, etcdstore.Config{})
	if err := s.MarkDeleting("nope", false); errs.KindOf(err) != errs.NotFound {
		t.Errorf("MarkDeleting(nope): err = %v, want not-found", err)
	}
}
