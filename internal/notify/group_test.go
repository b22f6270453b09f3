package notify

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/store"
)

var t0 = time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)

// step is one second of a story: entries arriving, then what is due.
type arrival struct {
	at       time.Duration
	service  string
	action   string
	repeated int // this many, one per second from at
}

func TestBatcherGroups(t *testing.T) {
	g := Grouping{Wait: 5 * time.Second, Interval: time.Minute, MaxEntries: 3}
	tests := []struct {
		name     string
		arrivals []arrival
		until    time.Duration
		want     []string // per delivery: "second service count omitted"
	}{
		{"one entry waits for the group to fill", []arrival{{0, "web", "restart", 1}}, 10 * time.Second,
			[]string{"5s web 1 0"}},
		{"a crash loop is one delivery per interval", []arrival{{0, "web", "restart", 150}}, 200 * time.Second,
			[]string{"5s web 6 3", "1m5s web 60 57", "2m5s web 60 57", "3m5s web 24 21"}},
		{"services are grouped apart", []arrival{{0, "web", "restart", 2}, {1 * time.Second, "api", "replace", 1}}, 10 * time.Second,
			[]string{"5s web 2 0", "6s api 1 0"}},
		{"a quiet service starts afresh", []arrival{{0, "web", "restart", 1}, {3 * time.Minute, "web", "restart", 1}}, 4 * time.Minute,
			[]string{"5s web 1 0", "3m5s web 1 0"}},
		{"again within the interval waits for it", []arrival{{0, "web", "restart", 1}, {30 * time.Second, "web", "restart", 1}}, 2 * time.Minute,
			[]string{"5s web 1 0", "1m5s web 1 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatcher(g)
			var got []string
			var seq uint64
			total, delivered := 0, 0
			for s := time.Duration(0); s <= tt.until; s += time.Second {
				now := t0.Add(s)
				for _, a := range tt.arrivals {
					if s >= a.at && s < a.at+time.Duration(a.repeated)*time.Second {
						seq++
						total++
						b.add(store.Entry{Seq: seq, Time: now, Project: "demo", Service: a.service, Action: a.action}, now)
					}
				}
				ps, next := b.due(now)
				for _, p := range ps {
					delivered += p.Count
					if len(p.Entries)+p.Omitted != p.Count || p.Actions[p.Entries[0].Action] != p.Count {
						t.Errorf("payload %+v does not add up", p)
					}
					got = append(got, fmt.Sprintf("%s %s %d %d", s, p.Service, p.Count, p.Omitted))
				}
				if !next.IsZero() && !next.After(now) {
					t.Errorf("at %s next wake %s is not ahead", s, next.Sub(t0))
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("deliveries\n%q\nwant\n%q", got, tt.want)
			}
			if delivered != total {
				t.Errorf("delivered %d of %d entries", delivered, total)
			}
		})
	}
}

func TestBatcherForgetsQuietGroups(t *testing.T) {
	b := newBatcher(Grouping{})
	b.add(store.Entry{Seq: 1, Time: t0, Project: "p", Service: "s", Action: "restart"}, t0)
	if ps, _ := b.due(t0.Add(5 * time.Second)); len(ps) != 1 {
		t.Fatalf("due: %+v", ps)
	}
	if _, next := b.due(t0.Add(2 * time.Minute)); !next.IsZero() || len(b.groups) != 0 {
		t.Errorf("after a quiet interval: %d groups, next %v", len(b.groups), next)
	}
}

func TestSlackText(t *testing.T) {
	p := Payload{Project: "demo", Service: "web", Count: 3, First: t0, Last: t0.Add(2 * time.Second),
		Actions: map[string]int{"restart": 2, "replace": 1}, Omitted: 1,
		Entries: []store.Entry{{Time: t0, Action: "restart", Reason: "exited", Container: "demo-web-1", Message: "exit code 3"},
			{Time: t0.Add(time.Second), Action: "replace", Reason: "unhealthy", Error: "no image"}}}
	want := "*tend* demo/web: 1 replace, 2 restart (15:00:00 to 15:00:02 UTC)\n" +
		"• 15:00:00 restart (exited) demo-web-1: exit code 3\n" +
		"• 15:00:01 replace (unhealthy) - failed: no image\n" +
		"… and 1 more"
	if got := slackText(p); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWebhookFiltersAndChecks(t *testing.T) {
	w := Webhook{URL: "https://hooks.example/T0/secret", Services: []string{"web", "other/api"}, Actions: []string{"restart"}}
	for _, tt := range []struct {
		e    store.Entry
		want bool
	}{
		{store.Entry{Project: "demo", Service: "web", Action: "restart"}, true},
		{store.Entry{Project: "other", Service: "api", Action: "restart"}, true},
		{store.Entry{Project: "demo", Service: "api", Action: "restart"}, false},
		{store.Entry{Project: "demo", Service: "web", Action: "create"}, false},
	} {
		if got := w.wants(tt.e); got != tt.want {
			t.Errorf("wants(%+v) = %v", tt.e, got)
		}
	}
	if err := w.Check(); err != nil {
		t.Error(err)
	}
	for _, bad := range []Webhook{{URL: "ftp://x/y"}, {URL: "hooks.example/x"}, {URL: "https://x/y", Format: "teams"}} {
		err := bad.Check()
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("check of %+v: %v", bad, err)
		}
	}
	if r := Redact(w.URL); r != "https://hooks.example/..." {
		t.Errorf("redact: %s", r)
	}
}
