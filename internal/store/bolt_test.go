package store_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// open opens a Bolt store in a fresh directory and closes it when the test ends.
func open(t *testing.T, cfg store.BoltConfig) *store.Bolt {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "tend.db")
	}
	s, err := store.OpenBolt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// project is a project of one service whose image names the version, so
// versions are told apart.
func project(name string, v int) spec.Project {
	return spec.Project{Name: name, Services: []spec.Service{{Name: "web", Image: fmt.Sprintf("web:%d", v), Replicas: 1}}}
}

func TestPutProjectVersions(t *testing.T) {
	s := open(t, store.BoltConfig{MaxVersions: 3})
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
	if got, want := s.Versions(t, "demo"), []int{3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("versions kept %v, want %v (MaxVersions 3)", got, want)
	}
}

func TestProjects(t *testing.T) {
	s := open(t, store.BoltConfig{})
	if recs, err := s.Projects(); err != nil || len(recs) != 0 {
		t.Fatalf("empty store: Projects() = %v, %v", recs, err)
	}
	for _, name := range []string{"web", "demo"} {
		if _, err := s.PutProject(project(name, 1), t0); err != nil {
			t.Fatal(err)
		}
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
	if _, err := s.Project("nope"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("Project(nope): err = %v, want not-found", err)
	}
}

func TestDeleteProject(t *testing.T) {
	s := open(t, store.BoltConfig{})
	mustPut(t, s, "demo")
	mustPut(t, s, "demo2") // shares a prefix with demo: must survive its deletion
	hist := map[reconcile.SlotKey]reconcile.History{{Service: "web", Slot: 1}: {Container: "abc", Restarts: 1}}
	for _, name := range []string{"demo", "demo2"} {
		if err := s.PutHistory(name, hist); err != nil {
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
	if !rec.Deleting || !rec.Volumes {
		t.Errorf("after MarkDeleting(true) then (false): %+v, want deleting with volumes (a request to remove volumes sticks)", rec)
	}
	if err := s.DeleteProject("demo"); err != nil {
		t.Fatal(err)
	}

	if _, err := s.Project("demo"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("Project after delete: err = %v, want not-found", err)
	}
	if h, err := s.History("demo"); err != nil || len(h) != 0 {
		t.Errorf("History after delete = %v, %v; want none", h, err)
	}
	if v := s.Versions(t, "demo"); len(v) != 0 {
		t.Errorf("versions after delete: %v", v)
	}
	if j, _ := s.Journal(store.Query{Project: "demo"}); len(j) != 1 {
		t.Errorf("journal after delete has %d entries of demo, want 1: the journal stays", len(j))
	}
	if h, _ := s.History("demo2"); len(h) != 1 {
		t.Errorf("History(demo2) after deleting demo = %v, want its slot kept", h)
	}
	if v := s.Versions(t, "demo2"); !slices.Equal(v, []int{1}) {
		t.Errorf("versions of demo2 after deleting demo: %v, want [1]", v)
	}
}

func TestDeleteProjectErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*testing.T, *store.Bolt)
		want  errs.Kind
	}{
		{name: "missing", setup: func(*testing.T, *store.Bolt) {}, want: errs.NotFound},
		{name: "not marked deleting", setup: func(t *testing.T, s *store.Bolt) { mustPut(t, s, "demo") }, want: errs.Conflict},
		{name: "brought up again after the mark", setup: func(t *testing.T, s *store.Bolt) {
			mustPut(t, s, "demo")
			if err := s.MarkDeleting("demo", false); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, "demo")
		}, want: errs.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, store.BoltConfig{})
			tt.setup(t, s)
			if err := s.DeleteProject("demo"); errs.KindOf(err) != tt.want {
				t.Errorf("DeleteProject: err = %v (%s), want %s", err, errs.KindOf(err), tt.want)
			}
		})
	}
	s := open(t, store.BoltConfig{})
	if err := s.MarkDeleting("nope", false); errs.KindOf(err) != errs.NotFound {
		t.Errorf("MarkDeleting(nope): err = %v, want not-found", err)
	}
}

func TestHistory(t *testing.T) {
	s := open(t, store.BoltConfig{})
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

func TestAppendNumbersDensely(t *testing.T) {
	s := open(t, store.BoltConfig{})
	got := mustAppend(t, s, store.Entry{Project: "a", Action: "up"}, store.Entry{Project: "b", Action: "up"}, store.Entry{Project: "a", Action: "create"})
	if seqs := seqsOf(got); !slices.Equal(seqs, []uint64{1, 2, 3}) {
		t.Errorf("first append numbered %v, want [1 2 3]", seqs)
	}
	if out, err := s.Append(); err != nil || out != nil {
		t.Errorf("Append() = %v, %v; want nothing", out, err)
	}
	got = mustAppend(t, s, store.Entry{Project: "a", Action: "down"})
	if seqs := seqsOf(got); !slices.Equal(seqs, []uint64{4}) {
		t.Errorf("second append numbered %v, want [4] (an empty append takes no number)", seqs)
	}
	all, err := s.Journal(store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if all[3].Project != "a" || all[3].Action != "down" {
		t.Errorf("entry 4 = %+v", all[3])
	}
}

func TestJournalQuery(t *testing.T) {
	s := open(t, store.BoltConfig{})
	// Seqs 1..10; odd ones are project a, even ones b.
	for i := 1; i <= 10; i++ {
		p := "a"
		if i%2 == 0 {
			p = "b"
		}
		mustAppend(t, s, store.Entry{Project: p, Action: "up", Time: t0.Add(time.Duration(i) * time.Second)})
	}
	tests := []struct {
		name string
		q    store.Query
		want []uint64
	}{
		{name: "all", q: store.Query{}, want: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{name: "project", q: store.Query{Project: "a"}, want: []uint64{1, 3, 5, 7, 9}},
		{name: "after", q: store.Query{After: 7}, want: []uint64{8, 9, 10}},
		{name: "after the last", q: store.Query{After: 10}, want: nil},
		{name: "limit keeps the newest", q: store.Query{Limit: 3}, want: []uint64{8, 9, 10}},
		{name: "limit over the count", q: store.Query{Limit: 50}, want: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{name: "project and limit", q: store.Query{Project: "b", Limit: 2}, want: []uint64{8, 10}},
		{name: "project, after and limit", q: store.Query{Project: "a", After: 2, Limit: 2}, want: []uint64{7, 9}},
		{name: "project after", q: store.Query{Project: "b", After: 5}, want: []uint64{6, 8, 10}},
		{name: "unknown project", q: store.Query{Project: "c"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Journal(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if seqs := seqsOf(got); !slices.Equal(seqs, tt.want) {
				t.Errorf("Journal(%+v) seqs %v, want %v", tt.q, seqs, tt.want)
			}
			for _, e := range got {
				if !e.Time.Equal(t0.Add(time.Duration(e.Seq) * time.Second)) {
					t.Errorf("entry %d has time %s: fields lost on the way", e.Seq, e.Time)
				}
			}
		})
	}
}

func TestJournalRetention(t *testing.T) {
	tests := []struct {
		name  string
		batch int // entries per Append
	}{
		{name: "one at a time", batch: 1},
		{name: "batches across the limit", batch: 7},
		{name: "all at once", batch: 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, store.BoltConfig{MaxEntries: 10})
			for n := 0; n < 25; n += tt.batch {
				var batch []store.Entry
				for i := n; i < min(n+tt.batch, 25); i++ {
					batch = append(batch, store.Entry{Project: "demo", Action: "up"})
				}
				mustAppend(t, s, batch...)
			}
			got, err := s.Journal(store.Query{})
			if err != nil {
				t.Fatal(err)
			}
			want := []uint64{16, 17, 18, 19, 20, 21, 22, 23, 24, 25}
			if seqs := seqsOf(got); !slices.Equal(seqs, want) {
				t.Errorf("kept %v, want %v", seqs, want)
			}
		})
	}
}

func TestAppended(t *testing.T) {
	s := open(t, store.BoltConfig{})
	ch := s.Appended()
	if s.Appended() != ch {
		t.Error("Appended changed without an Append")
	}
	select {
	case <-ch:
		t.Fatal("Appended closed before any Append")
	default:
	}
	mustAppend(t, s, store.Entry{Project: "demo", Action: "up"})
	select {
	case <-ch:
	default:
		t.Fatal("Appended not closed by the Append")
	}
	select {
	case <-s.Appended():
		t.Fatal("the next Appended channel is already closed")
	default:
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tend.db")
	cfg := store.BoltConfig{Path: path, MaxEntries: 5}
	s, err := store.OpenBolt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "demo")
	mustPut(t, s, "demo")
	if err := s.MarkDeleting("demo", true); err != nil {
		t.Fatal(err)
	}
	hist := map[reconcile.SlotKey]reconcile.History{{Service: "web", Slot: 1}: {Container: "abc", Streak: []time.Time{t0}, Restarts: 1}}
	if err := s.PutHistory("demo", hist); err != nil {
		t.Fatal(err)
	}
	for range 7 {
		mustAppend(t, s, store.Entry{Project: "demo", Action: "restart", Reason: "exited", Time: t0})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, cfg)
	rec, err := s.Project("demo")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != 2 || !rec.Deleting || !rec.Volumes || rec.Project.Services[0].Image != "web:1" {
		t.Errorf("after reopen: %+v, want version 2, deleting with volumes", rec)
	}
	checkHistory(t, s, "demo", hist)
	if got := s.Versions(t, "demo"); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("versions after reopen %v, want [1 2]", got)
	}
	j, err := s.Journal(store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if seqs := seqsOf(j); !slices.Equal(seqs, []uint64{3, 4, 5, 6, 7}) {
		t.Errorf("journal after reopen %v, want [3 4 5 6 7]", seqs)
	}
	if j[0].Action != "restart" || j[0].Reason != "exited" || !j[0].Time.Equal(t0) {
		t.Errorf("entry after reopen: %+v", j[0])
	}
	got := mustAppend(t, s, store.Entry{Project: "demo", Action: "up"})
	if got[0].Seq != 8 {
		t.Errorf("first append after reopen numbered %d, want 8: numbers continue", got[0].Seq)
	}
	if rec, _ := s.PutProject(project("demo", 3), t0); rec.Version != 3 {
		t.Errorf("put after reopen: version %d, want 3", rec.Version)
	}
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
