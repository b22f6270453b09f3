package metrics_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tend-sh/tend/internal/metrics"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
	"github.com/tend-sh/tend/internal/testwait"
)

type source struct{}

func (source) Status(context.Context, string) ([]supervisor.Replica, error) {
	return []supervisor.Replica{
		{Project: "demo", Service: "web", Slot: 1, State: "running", Ready: true},
		{Project: "demo", Service: "web", Slot: 2, State: "running", Restarts: 3},
		{Project: "demo", Service: "pay", Slot: 1, State: "exited", Quarantine: "quarantined", Restarts: 5},
	}, nil
}

func (source) ScaleStatus(context.Context, string) ([]supervisor.ScaleStatus, error) {
	return []supervisor.ScaleStatus{
		{Project: "demo", Service: "web", Current: 2, Ready: 1, Desired: 3, Min: 1, Max: 6, Auto: true},
		{Project: "demo", Service: "pay", Current: 1, Desired: 1},
	}, nil
}

func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// TestHealActionsAndState: entries journaled after tend started are counted
// by action and reason (the ones before are not: a counter starts at the
// daemon's start), and each scrape reads the replicas' and services' state.
func TestHealActionsAndState(t *testing.T) {
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(t.TempDir(), "tend.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Append(store.Entry{Project: "demo", Service: "web", Action: "restart", Reason: "exited"}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, source{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	from := metrics.Last(st)
	go func() { done <- m.Follow(ctx, st, from) }()
	for _, e := range []store.Entry{
		{Project: "demo", Service: "web", Action: "restart", Reason: "exited"},
		{Project: "demo", Service: "web", Action: "restart", Reason: "exited"},
		{Project: "demo", Service: "pay", Action: "quarantine", Reason: "repairs-failed"},
		{Project: "demo", Service: "web", Action: "scale", Reason: "latency"},
	} {
		if _, err := st.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	// The last entry appended: Follow may read the others in more than one go.
	want := `tend_actions_total{action="scale",project="demo",reason="latency",service="web"} 1`
	testwait.Eventually(t, "the appended entries counted", func() bool { return strings.Contains(scrape(t, reg), want) })
	out := scrape(t, reg)
	for _, line := range []string{
		`tend_actions_total{action="restart",project="demo",reason="exited",service="web"} 2`,
		`tend_actions_total{action="quarantine",project="demo",reason="repairs-failed",service="pay"} 1`,
		`tend_replicas{project="demo",service="web",state="running"} 2`,
		`tend_replicas{project="demo",service="pay",state="quarantined"} 1`,
		`tend_replicas_ready{project="demo",service="web"} 1`,
		`tend_replicas_ready{project="demo",service="pay"} 0`,
		`tend_replica_restarts{project="demo",service="web",slot="2"} 3`,
		`tend_service_quarantined{project="demo",service="pay",state="quarantined"} 1`,
		`tend_service_replicas{count="desired",project="demo",service="web"} 3`,
		`tend_service_replicas{count="max",project="demo",service="web"} 6`,
		`tend_service_replicas{count="current",project="demo",service="pay"} 1`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
	if strings.Contains(out, `tend_service_replicas{count="max",project="demo",service="pay"}`) {
		t.Error("a service that is not autoscaled has a max")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
