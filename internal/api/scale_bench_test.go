package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// BenchmarkScalePs times `tend ps` (GET /v1/replicas, every project)
// through the API handler on a daemon running 500 services, 2,000 replicas
// on the fake runtime. Goal: under 100 ms. Figures in bench/README.md.
//
//	go test -run XXX -bench ScalePs -benchtime 50x ./internal/api
func BenchmarkScalePs(b *testing.B) {
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(b.TempDir(), "tend.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rt := fake.New()
	sup := supervisor.New(supervisor.Config{Runtime: rt, Store: st, Clock: clock.Real{}, Parallel: 64})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() { cancel(); <-done }()
	want := 0
	for p := range 10 {
		proj := scaleProject(fmt.Sprintf("scale%02d", p), 50, 4)
		if _, err := sup.Up(ctx, proj); err != nil {
			b.Fatal(err)
		}
		want += 50 * 4
	}
	deadline := time.Now().Add(5 * time.Minute)
	for runningIn(rt) < want {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d replicas running after 5 minutes", runningIn(rt), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	h := (&api.Server{Supervisor: sup, Store: st, Log: slog.New(slog.DiscardHandler), Version: "bench"}).Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/replicas", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /v1/replicas: %d %s", rec.Code, rec.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(want), "replicas")
}

func scaleProject(name string, services, replicas int) spec.Project {
	p := spec.Project{Name: name, Networks: []spec.Network{{Key: "default", Name: name + "_default"}}}
	for s := range services {
		p.Services = append(p.Services, spec.Service{
			Name: fmt.Sprintf("svc%03d", s), Image: "demo:dev", Replicas: replicas,
			Networks: []spec.NetworkAttach{{Network: "default"}},
			Restart:  spec.RestartPolicy{Condition: spec.RestartAny},
			Tend: spec.Extension{Backoff: spec.Backoff{Initial: spec.DefaultBackoffInitial,
				Max: spec.DefaultBackoffMax, ResetAfter: spec.DefaultBackoffResetAfter}},
		})
	}
	return p
}

func runningIn(rt *fake.Fake) int {
	cs, _ := rt.List(context.Background(), "")
	rt.ResetCalls()
	n := 0
	for _, c := range cs {
		if c.State == runtime.Running {
			n++
		}
	}
	return n
}
