package chaos_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/chaos"
	"github.com/tend-sh/tend/internal/errs"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func at(d string) time.Time {
	v, err := time.ParseDuration(d)
	if err != nil {
		panic(err)
	}
	return t0.Add(v)
}

func TestParseKinds(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "kill", want: "kill"},
		{in: "kill,pause, rm", want: "kill pause rm"},
		{in: "all", want: "kill stop rm pause sick slow disk"},
		{in: "node-kill", wantErr: "needs cluster mode"},
		{in: "kill,node-cut", wantErr: "needs cluster mode"},
		{in: "explode", wantErr: `unknown action "explode"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ks, err := chaos.ParseKinds(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errs.KindOf(err) != errs.Invalid {
					t.Fatalf("err %v, want an invalid-input error containing %q", err, tt.wantErr)
				}
				return
			}
			var got []string
			for _, k := range ks {
				got = append(got, string(k))
			}
			if err != nil || strings.Join(got, " ") != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestScheduleDue(t *testing.T) {
	tests := []struct {
		name string
		s    chaos.Schedule
		n    int
		want string // offset, or "" for none
	}{
		{name: "once", s: chaos.Schedule{}, n: 0, want: "0s"},
		{name: "once has no second", s: chaos.Schedule{}, n: 1},
		{name: "every", s: chaos.Schedule{Every: 5 * time.Second, For: time.Minute}, n: 3, want: "15s"},
		{name: "ends before for", s: chaos.Schedule{Every: 5 * time.Second, For: 15 * time.Second}, n: 3},
		{name: "last within for", s: chaos.Schedule{Every: 5 * time.Second, For: 15 * time.Second}, n: 2, want: "10s"},
		{name: "until stopped", s: chaos.Schedule{Every: time.Second}, n: 1000, want: "16m40s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.s.Due(t0, tt.n)
			if tt.want == "" {
				if ok {
					t.Fatalf("fault %d due at %s, want none", tt.n, got)
				}
				return
			}
			if !ok || !got.Equal(at(tt.want)) {
				t.Fatalf("fault %d: %s %v, want +%s", tt.n, got.Sub(t0), ok, tt.want)
			}
		})
	}
}

func rep(svc string, slot int, id string) chaos.Replica {
	return chaos.Replica{Service: svc, Slot: slot, Container: "demo-" + svc, ID: id, Running: true, Ready: true, StartedAt: t0}
}

func TestPick(t *testing.T) {
	notReady := rep("web", 2, "w2")
	notReady.Ready = false
	job := rep("migrate", 1, "m1")
	job.Running, job.Job = false, true
	reps := []chaos.Replica{rep("web", 3, "w3"), notReady, rep("web", 1, "w1"), rep("api", 1, "a1"), job}
	tests := []struct {
		name    string
		service string
		roll    uint64
		want    string
	}{
		{name: "ordered by service and slot", roll: 0, want: "a1"},
		{name: "skips the unready and jobs", roll: 1, want: "w1"},
		{name: "wraps", roll: 5, want: "w3"},
		{name: "one service", service: "web", roll: 1, want: "w3"},
		{name: "no candidate", service: "migrate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := chaos.Pick(reps, tt.service, tt.roll)
			if tt.want == "" {
				if ok {
					t.Fatalf("picked %+v, want none", got)
				}
				return
			}
			if !ok || got.ID != tt.want {
				t.Fatalf("picked %+v (%v), want %s", got, ok, tt.want)
			}
		})
	}
}

// step is one observation in a fault's story.
type step struct {
	at      string
	entries []chaos.Entry
	rep     *chaos.Replica // the struck slot as polled; nil: no row for it
}

func TestBookRecovery(t *testing.T) {
	w1 := rep("web", 1, "w1")
	down := func(r chaos.Replica) *chaos.Replica { r.Ready, r.Running = false, false; return &r }
	up := func(r chaos.Replica) *chaos.Replica { return &r }
	restarted := w1
	restarted.Restarts = 1
	made := rep("web", 1, "w1b")
	made.StartedAt = at("2s")
	tests := []struct {
		name      string
		kind      chaos.Kind
		steps     []step
		recovered string // offset, or "" for not recovered
		down      bool
	}{
		{name: "kill restarted in place between two polls", kind: chaos.Kill,
			steps:     []step{{at: "50ms", rep: up(restarted), entries: []chaos.Entry{{Time: at("20ms"), Service: "web", Slot: 1, Action: "restart", Reason: "exited"}}}},
			recovered: "50ms", down: true},
		{name: "rm made anew", kind: chaos.Rm,
			steps:     []step{{at: "50ms"}, {at: "1s", rep: down(made)}, {at: "3s", rep: up(made)}},
			recovered: "3s", down: true},
		{name: "pause thawed in place: known by the journal", kind: chaos.Pause,
			steps:     []step{{at: "50ms", rep: up(w1), entries: []chaos.Entry{{Time: at("30ms"), Service: "web", Slot: 1, Action: "unpause", Reason: "paused"}}}},
			recovered: "50ms", down: true},
		{name: "sick: a standby is no healing, the takeover is", kind: chaos.Sick,
			steps: []step{
				{at: "1s", rep: up(w1), entries: []chaos.Entry{{Time: at("900ms"), Service: "web", Slot: 1, Action: "replace", Reason: "suspect"}}},
				{at: "3s", rep: down(w1)},
				{at: "5s", rep: up(made), entries: []chaos.Entry{{Time: at("4s"), Service: "web", Slot: 1, Action: "takeover", Reason: "replacement-ready"}}},
			},
			recovered: "5s", down: true},
		{name: "slow that kept serving", kind: chaos.Slow,
			steps:     []step{{at: "50ms", rep: up(w1)}},
			recovered: "50ms"},
		{name: "disk that took it out later", kind: chaos.Disk,
			steps:     []step{{at: "50ms", rep: down(w1)}, {at: "2s", rep: up(made)}},
			recovered: "2s", down: true},
		{name: "stop never healed", kind: chaos.Stop,
			steps: []step{{at: "50ms", rep: down(w1)}, {at: "10s", rep: down(w1)}},
			down:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b chaos.Book
			b.Inject(tt.kind, w1, t0, "")
			for _, s := range tt.steps {
				b.Journal(s.entries)
				var reps []chaos.Replica
				if s.rep != nil {
					reps = append(reps, *s.rep)
				}
				b.Observe(at(s.at), append(reps, rep("api", 1, "a1")))
			}
			f := b.Faults[0]
			if f.Down != tt.down {
				t.Errorf("down %v, want %v", f.Down, tt.down)
			}
			if tt.recovered == "" {
				if f.Over() || f.Recovery() != -1 || b.Pending() != 1 {
					t.Fatalf("recovered at %s (%s), want not recovered", f.Recovered, f.Recovery())
				}
				return
			}
			if !f.Recovered.Equal(at(tt.recovered)) || b.Pending() != 0 {
				t.Fatalf("recovered at +%s, want +%s", f.Recovered.Sub(t0), tt.recovered)
			}
			if want := at(tt.recovered).Sub(t0); tt.down && f.Recovery() != want || !tt.down && f.Recovery() != 0 {
				t.Errorf("recovery %s, want %s (down %v)", f.Recovery(), want, tt.down)
			}
		})
	}
}

func TestBookClaimsEntries(t *testing.T) {
	var b chaos.Book
	b.Inject(chaos.Rm, rep("db", 1, "d1"), t0, "")
	b.Inject(chaos.Kill, rep("web", 1, "w1"), at("5s"), "")
	b.Inject(chaos.Kill, rep("web", 2, "w2"), at("6s"), "no such container")
	b.Journal([]chaos.Entry{
		{Seq: 1, Time: at("-1s"), Service: "shop", Action: "scale"},                              // before any fault
		{Seq: 2, Time: at("100ms"), Service: "db", Slot: 1, Action: "create", Reason: "missing"}, // db's slot
		{Seq: 3, Time: at("2s"), Service: "api", Slot: 1, Action: "restart"},                     // a dependent, while db is out
		{Seq: 4, Time: at("5100ms"), Service: "web", Slot: 1, Action: "restart"},                 // web's slot
		{Seq: 5, Time: at("7s"), Service: "db", Slot: 1, Action: "ready"},                        // db's slot, later
		{Seq: 7, Time: at("7s"), Service: "db", Action: "restart-dependents"},                    // about db, after web's fault
	})
	b.Observe(at("8s"), []chaos.Replica{rep("db", 1, "d2"), rep("web", 1, "w1")})
	b.Journal([]chaos.Entry{{Seq: 6, Time: at("30s"), Service: "shop", Action: "scale"}}) // long after both
	seqs := func(es []chaos.Entry) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	for i, want := range [][]uint64{{2, 3, 5, 7}, {4}, nil} {
		if got := seqs(b.Faults[i].Entries); !equal(got, want) {
			t.Errorf("fault %d claims %v, want %v", i+1, got, want)
		}
	}
	if got := seqs(b.Other); !equal(got, []uint64{1, 6}) {
		t.Errorf("other entries %v, want [1 6]", got)
	}
	if !b.Faults[2].Over() || b.Faults[2].Recovery() != 0 {
		t.Errorf("a fault that could not be injected is over at once: %+v", b.Faults[2])
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAssess(t *testing.T) {
	job := chaos.Replica{Service: "migrate", Slot: 1, Job: true}
	tests := []struct {
		name string
		reps []chaos.Replica
		cs   []chaos.Container
		want string
	}{
		{name: "converged", reps: []chaos.Replica{rep("web", 1, "w1"), job},
			cs: []chaos.Container{{Name: "demo-web-1", Service: "web", Slot: 1}, {Name: "demo-migrate-1", Service: "migrate", Slot: 1}}, want: "converged"},
		{name: "duplicate", reps: []chaos.Replica{rep("web", 1, "w1")},
			cs:   []chaos.Container{{Name: "demo-web-1", Service: "web", Slot: 1}, {Name: "demo-web-1-next", Service: "web", Slot: 1}},
			want: "duplicates [web/1: [demo-web-1 demo-web-1-next]]"},
		{name: "orphan", reps: []chaos.Replica{rep("web", 1, "w1")},
			cs: []chaos.Container{{Name: "demo-web-1", Service: "web", Slot: 1}, {Name: "demo-web-2", Service: "web", Slot: 2}}, want: "orphans [demo-web-2]"},
		{name: "not ready", reps: []chaos.Replica{{Service: "web", Slot: 1, ID: "w1", Running: true}},
			cs: []chaos.Container{{Name: "demo-web-1", Service: "web", Slot: 1}}, want: "not ready [web/1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := chaos.Assess(tt.reps, tt.cs)
			got := "converged"
			switch {
			case len(st.Duplicates) > 0:
				got = "duplicates " + strings.Join([]string{"[" + strings.Join(st.Duplicates, " ") + "]"}, "")
			case len(st.Orphans) > 0:
				got = "orphans [" + strings.Join(st.Orphans, " ") + "]"
			case len(st.NotReady) > 0:
				got = "not ready [" + strings.Join(st.NotReady, " ") + "]"
			}
			if got != tt.want || st.Converged != (tt.want == "converged") {
				t.Fatalf("got %s (converged %v), want %s", got, st.Converged, tt.want)
			}
		})
	}
}

func TestReport(t *testing.T) {
	var b chaos.Book
	for i, d := range []string{"100ms", "300ms", "200ms"} {
		start := at((time.Duration(i) * 5 * time.Second).String())
		f := b.Inject(chaos.Kill, rep("web", i+1, "w"), start, "")
		f.Down, f.Recovered = true, start.Add(mustDur(d))
	}
	b.Inject(chaos.Slow, rep("api", 1, "a1"), at("15s"), "")
	b.Observe(at("15050ms"), []chaos.Replica{rep("api", 1, "a1")})
	b.Inject(chaos.Stop, rep("db", 1, "d1"), at("20s"), "")
	b.Observe(at("20050ms"), nil)
	r := b.Report("demo", t0, at("1m"), chaos.State{Converged: true}, at("25s"))
	if len(r.Kinds) != 3 {
		t.Fatalf("kinds %+v", r.Kinds)
	}
	k := r.Kinds[0]
	if k.Kind != chaos.Kill || k.Faults != 3 || k.Down != 3 || k.P50 != 200*time.Millisecond || k.P99 != 300*time.Millisecond || k.Max != 300*time.Millisecond {
		t.Errorf("kill: %+v", k)
	}
	if s := r.Kinds[1]; s.Kind != chaos.Slow || s.Down != 0 || s.NotRecovered != 0 {
		t.Errorf("slow: %+v", s)
	}
	if s := r.Kinds[2]; s.Kind != chaos.Stop || s.NotRecovered != 1 {
		t.Errorf("stop: %+v", s)
	}
	if r.OK() {
		t.Error("a fault not recovered: the report is not OK")
	}
	if r.Settled != 5*time.Second {
		t.Errorf("settled %s after the last fault, want 5s", r.Settled)
	}
}

func mustDur(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// A replica seen ready again before tend's entry about it is unexplained
// until the entry comes: tend journals an action once it returned.
func TestBookUnexplained(t *testing.T) {
	var b chaos.Book
	w1 := rep("web", 1, "w1")
	b.Inject(chaos.Kill, w1, t0, "")
	b.Inject(chaos.Slow, rep("api", 1, "a1"), t0, "")
	made := rep("web", 1, "w1b")
	b.Observe(at("1s"), []chaos.Replica{made, rep("api", 1, "a1")})
	if n := b.Unexplained(); n != 1 || b.Pending() != 0 {
		t.Fatalf("unexplained %d, pending %d; want the kill unexplained (the slow fault never took its replica out)", n, b.Pending())
	}
	b.Journal([]chaos.Entry{{Time: at("900ms"), Service: "web", Slot: 1, Action: "ready"}})
	if n := b.Unexplained(); n != 1 {
		t.Fatalf("unexplained %d after a ready entry, want 1: ready is no action of tend", n)
	}
	b.Journal([]chaos.Entry{{Time: at("1100ms"), Service: "web", Slot: 1, Action: "restart", Reason: "exited"}})
	if n := b.Unexplained(); n != 0 {
		t.Fatalf("unexplained %d after the restart's entry, want 0", n)
	}
}
