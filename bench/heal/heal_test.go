package main

import (
	"errors"
	"testing"
	"time"
)

func TestJournalMilestones(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	out := `{"seq":1,"time":"2026-11-26T23:59:59Z","project":"p","container":"abc123","action":"unready","reason":"readiness"}
not json
{"seq":2,"time":"2026-11-27T00:00:02.5Z","project":"p","container":"abc123","action":"unready","reason":"readiness"}
{"seq":3,"time":"2026-11-27T00:00:02.6Z","project":"p","container":"fff000","action":"replace","reason":"liveness"}
{"seq":4,"time":"2026-11-27T00:00:03Z","project":"p","container":"abc123","action":"replace","reason":"liveness"}
{"seq":5,"time":"2026-11-27T00:00:03.1Z","project":"p","container":"abc123","action":"create","reason":"new"}
{"seq":6,"time":"2026-11-27T00:00:04Z","project":"p","container":"abc123","action":"takeover","reason":"replacement-ready"}
{"seq":7,"time":"2026-11-27T00:00:09Z","project":"p","container":"abc123","action":"unready","reason":"readiness"}
`
	es := parseJournal(out)
	if len(es) != 7 {
		t.Fatalf("parsed %d entries, want 7 (the line that is not JSON skipped)", len(es))
	}
	got := journalMilestonesOf(es, "abc123def456", t0)
	want := map[string]time.Duration{msUnready: 2500 * time.Millisecond, msReplace: 3 * time.Second, msTakeover: 4 * time.Second}
	if len(got) != len(want) {
		t.Fatalf("milestones = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s (entries before t0, of other containers and later repeats ignored)", k, got[k], v)
		}
	}
}

func TestTimelineOrdersByTime(t *testing.T) {
	tr := trial{}
	tr.mark(msAnswers, 3200*time.Millisecond)
	tr.mark(msStopped, 2100*time.Millisecond)
	tr.mark(msUnhealthy, 2*time.Second)
	tr.mark(msUnhealthy, 9*time.Second) // the first mark stays
	if got, want := timeline(tr), "unhealthy 2.00, old stopped 2.10, new answers 3.20"; got != want {
		t.Errorf("timeline = %q, want %q", got, want)
	}
}

func TestSummarize(t *testing.T) {
	p := &peer{trials: []trial{
		{Done: true, Heal: 3 * time.Second, At: map[string]time.Duration{msUnready: 2 * time.Second}},
		{Done: true, Heal: 5 * time.Second, At: map[string]time.Duration{msUnready: 3 * time.Second}},
		{Left: "still the sick container", At: map[string]time.Duration{msUnhealthy: time.Second}},
		{Err: errors.New("boom")},
	}}
	o := summarize(p)
	if o.heal.N != 2 || o.heal.Median != 4*time.Second {
		t.Errorf("heal = %+v, want 2 trials, median 4s", o.heal)
	}
	if o.never != 1 || o.failed != 1 || o.left != "still the sick container" {
		t.Errorf("never %d, failed %d, left %q; want 1, 1, the never trial's note", o.never, o.failed, o.left)
	}
	if s := o.at[msUnready]; s.N != 2 || s.Median != 2500*time.Millisecond {
		t.Errorf("unready = %+v, want 2 trials, median 2.5s", s)
	}
	if s := o.at[msUnhealthy]; s.N != 1 {
		t.Errorf("unhealthy = %+v, want the never trial's milestone counted", s)
	}
}

func TestGoalRows(t *testing.T) {
	peers := []*peer{{key: "tend", name: "tend"}, {key: "swarm-0s", name: "swarm 0s"}, {key: "swarm", name: "swarm"}}
	heal := func(ds ...time.Duration) outcome {
		p := &peer{}
		for _, d := range ds {
			p.trials = append(p.trials, trial{Done: true, Heal: d})
		}
		return summarize(p)
	}
	outs := map[string]outcome{
		"tend":     heal(3 * time.Second),
		"swarm-0s": heal(6 * time.Second),
		"swarm":    heal(12 * time.Second),
	}
	got := goalRows(peers, outs)
	want := [][]string{
		{"ratio", "value", "goal", "verdict"},
		{"tend / swarm 0s", "0.500x", "<= 0.60x", "MET"},
		{"tend / swarm", "0.250x", "-", "(for information)"},
	}
	if len(got) != len(want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Errorf("row %d = %v, want %v", i, got[i], want[i])
				break
			}
		}
	}
}

func TestSteps(t *testing.T) {
	ms := func(d float64) time.Duration { return time.Duration(d * float64(time.Second)) }
	p := &peer{trials: []trial{
		{Done: true, At: map[string]time.Duration{msUnready: ms(2.5), msCreated: ms(2.6), msStarted: ms(3.5), msReplace: ms(3.5)}},
		{Done: true, At: map[string]time.Duration{msUnready: ms(3.0), msCreated: ms(3.2), msStarted: ms(3.8), msReplace: ms(3.8)}},
	}}
	if got, want := steps(summarize(p)), "unready 2.75, new created +0.15, new started +0.75"; got != want {
		t.Errorf("steps = %q, want %q (medians of per-trial differences; replace left out)", got, want)
	}
}
