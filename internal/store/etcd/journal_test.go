package etcdstore_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tend-sh/tend/internal/store"
	etcdstore "github.com/tend-sh/tend/internal/store/etcd"
)

func TestAppendNumbersDensely(t *testing.T) {
	s := openOne(t, etcdstore.Config{})
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
	if len(all) != 4 || all[3].Project != "a" || all[3].Action != "down" {
		t.Errorf("journal %+v, want 4 entries, the last a's down", all)
	}
}

func TestJournalQuery(t *testing.T) {
	s := openOne(t, etcdstore.Config{})
	// Seqs 1..10; odd ones are project a, even ones b; 9 and 10 are "down".
	for i := 1; i <= 10; i++ {
		p, action := "a", "up"
		if i%2 == 0 {
			p = "b"
		}
		if i > 8 {
			action = "down"
		}
		mustAppend(t, s, store.Entry{Project: p, Service: "web", Slot: i, Action: action, Reason: "r", Message: "m",
			Error: "e", Container: "c", Time: t0.Add(time.Duration(i) * time.Second)})
	}
	tests := []struct {
		name string
		q    store.Query
		want []uint64
	}{
		{name: "all", q: store.Query{}, want: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{name: "project", q: store.Query{Project: "a"}, want: []uint64{1, 3, 5, 7, 9}},
		{name: "action", q: store.Query{Action: "down"}, want: []uint64{9, 10}},
		{name: "service", q: store.Query{Service: "web", Limit: 1}, want: []uint64{10}},
		{name: "other service", q: store.Query{Service: "db"}, want: nil},
		{name: "after", q: store.Query{After: 7}, want: []uint64{8, 9, 10}},
		{name: "after the last", q: store.Query{After: 10}, want: nil},
		{name: "limit keeps the newest", q: store.Query{Limit: 3}, want: []uint64{8, 9, 10}},
		{name: "limit over the count", q: store.Query{Limit: 50}, want: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{name: "project and limit", q: store.Query{Project: "b", Limit: 2}, want: []uint64{8, 10}},
		{name: "project, after and limit", q: store.Query{Project: "a", After: 2, Limit: 2}, want: []uint64{7, 9}},
		{name: "project after", q: store.Query{Project: "b", After: 5}, want: []uint64{6, 8, 10}},
		{name: "project and action", q: store.Query{Project: "b", Action: "down"}, want: []uint64{10}},
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
				if !e.Time.Equal(t0.Add(time.Duration(e.Seq)*time.Second)) || e.Slot != int(e.Seq) || e.Reason != "r" ||
					e.Message != "m" || e.Error != "e" || e.Container != "c" {
					t.Errorf("entry %d = %+v: fields lost on the way", e.Seq, e)
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
	cli := newClient(t, startEtcd(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, cli, etcdstore.Config{Prefix: "/" + t.Name() + "/", MaxEntries: 10})
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
			resp, err := cli.Get(t.Context(), "/"+t.Name()+"/journal/", clientv3.WithPrefix())
			if err != nil || resp.Count != 10 {
				t.Errorf("%d journal keys in etcd, want 10 (%v)", resp.Count, err)
			}
		})
	}
}

// An Append larger than one etcd transaction, as the supervisor's backlog
// of a spell of refused writes can be, is numbered densely and read back
// whole, across Journal's pages.
func TestAppendLargerThanATransaction(t *testing.T) {
	s := openOne(t, etcdstore.Config{MaxEntries: 1000})
	mustAppend(t, s, store.Entry{Project: "demo", Action: "up"})
	batch := make([]store.Entry, 1200)
	for i := range batch {
		batch[i] = store.Entry{Project: "demo", Action: "restart"}
	}
	got := mustAppend(t, s, batch...)
	for i, e := range got {
		if e.Seq != uint64(i+2) {
			t.Fatalf("entry %d numbered %d, want %d", i, e.Seq, i+2)
		}
	}
	all, err := s.Journal(store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1000 || all[0].Seq != 202 || all[999].Seq != 1201 {
		t.Errorf("Journal has %d entries, %v..%v; want 1000, 202..1201", len(all), seqsOf(all[:1]), seqsOf(all[len(all)-1:]))
	}
	last, err := s.Journal(store.Query{Action: "restart", Limit: 600})
	if err != nil || len(last) != 600 || last[0].Seq != 602 {
		t.Errorf("newest 600 restarts: %d entries from %v, %v; want 600 from 602", len(last), seqsOf(last[:min(1, len(last))]), err)
	}
	// More bytes than etcd takes in one request (1.5 MiB by default).
	big := make([]store.Entry, 60)
	for i := range big {
		big[i] = store.Entry{Project: "demo", Action: "restart", Message: strings.Repeat("x", 30<<10)}
	}
	if got := mustAppend(t, s, big...); got[0].Seq != 1202 || got[59].Seq != 1261 {
		t.Errorf("60 entries of 30 KiB numbered %v..%v, want 1202..1261", seqsOf(got[:1]), seqsOf(got[59:]))
	}
	if j, err := s.Journal(store.Query{After: 1201}); err != nil || len(j) != 60 || len(j[0].Message) != 30<<10 {
		t.Errorf("the 60 entries of 30 KiB read back: %d, %v", len(j), err)
	}
}

func TestAppendedLocally(t *testing.T) {
	s := openOne(t, etcdstore.Config{})
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
		t.Fatal("Appended not closed when the Append returned")
	}
}

// An Append by another host closes this one's channel: the journal watch.
func TestAppendedByAnotherHost(t *testing.T) {
	e := startEtcd(t)
	here := open(t, newClient(t, e), etcdstore.Config{})
	there := open(t, newClient(t, e), etcdstore.Config{})
	for i := range 3 {
		ch := here.Appended()
		mustAppend(t, there, store.Entry{Project: "demo", Action: "up"})
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("append %d by another host: Appended not closed after 10s", i+1)
		}
		j, err := here.Journal(store.Query{After: uint64(i)})
		if err != nil || len(j) != 1 || j[0].Seq != uint64(i+1) {
			t.Errorf("after append %d by another host, the journal after %d: %v, %v", i+1, i, seqsOf(j), err)
		}
	}
}

// Two hosts appending at once get distinct, dense numbers.
func TestAppendFromTwoHosts(t *testing.T) {
	e := startEtcd(t)
	hosts := []*etcdstore.Store{open(t, newClient(t, e), etcdstore.Config{}), open(t, newClient(t, e), etcdstore.Config{})}
	const appends = 30
	seqs := make([][]uint64, len(hosts))
	var wg sync.WaitGroup
	for i, s := range hosts {
		wg.Go(func() {
			for n := range appends {
				batch := make([]store.Entry, 1+n%3)
				for k := range batch {
					batch[k] = store.Entry{Project: "demo", Action: "up", Slot: i}
				}
				out, err := s.Append(batch...)
				if err != nil {
					t.Error(err)
					return
				}
				for k, e := range out[1:] {
					if e.Seq != out[k].Seq+1 {
						t.Errorf("one Append numbered %v: not consecutive", seqsOf(out))
					}
				}
				seqs[i] = append(seqs[i], seqsOf(out)...)
			}
		})
	}
	wg.Wait()
	all := slices.Sorted(slices.Values(slices.Concat(seqs...)))
	for i, seq := range all {
		if seq != uint64(i+1) {
			t.Fatalf("numbers given %v, want 1..%d each once", all, len(all))
		}
	}
	j, err := hosts[1].Journal(store.Query{})
	if err != nil || len(j) != len(all) {
		t.Fatalf("journal has %d entries, %v; want %d", len(j), err, len(all))
	}
	for _, e := range j {
		if !slices.Contains(seqs[e.Slot], e.Seq) {
			t.Errorf("entry %d is host %d's, which was not given that number", e.Seq, e.Slot)
		}
	}
}
