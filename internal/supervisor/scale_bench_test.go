package supervisor

import (
	"context"
	"fmt"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// The daemon at scale (issue 20): 500 services, 2,000 replicas on the fake
// runtime. Goal: a full pass under 50 ms and the daemon under 256 MiB.
// Figures and the command are in bench/README.md ("The daemon at scale").
//
//	go test -run XXX -bench Scale -benchtime 50x ./internal/supervisor

// ScaleStack is the stack of the scale benchmarks: projects × services
// services of replicas each, on one network per project, a restart policy
// and a backoff as a compose file gets them.
func ScaleStack(projects, services, replicas int) []spec.Project {
	var out []spec.Project
	for p := range projects {
		name := fmt.Sprintf("scale%02d", p)
		proj := spec.Project{Name: name, Networks: []spec.Network{{Key: "default", Name: name + "_default"}}}
		for s := range services {
			proj.Services = append(proj.Services, spec.Service{
				Name: fmt.Sprintf("svc%03d", s), Image: "demo:dev", Replicas: replicas,
				Networks: []spec.NetworkAttach{{Network: "default"}},
				Restart:  spec.RestartPolicy{Condition: spec.RestartAny},
				Tend: spec.Extension{Backoff: spec.Backoff{Initial: spec.DefaultBackoffInitial,
					Max: spec.DefaultBackoffMax, ResetAfter: spec.DefaultBackoffResetAfter}},
			})
		}
		out = append(out, proj)
	}
	return out
}

// converged is a supervisor that has brought every project of ps up on the
// fake runtime, pass by pass, and the heap it then holds.
func converged(b *testing.B, ps []spec.Project) (*Supervisor, *fake.Fake, uint64) {
	b.Helper()
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(b.TempDir(), "tend.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	clk := clock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	rt := fake.New()
	rt.SetClock(clk.Now)
	s := New(Config{Runtime: rt, Store: st, Clock: clk})
	ctx := context.Background()
	want := 0
	for _, p := range ps {
		if _, err := s.Up(ctx, p); err != nil {
			b.Fatal(err)
		}
		for _, svc := range p.Services {
			want += svc.Replicas
		}
	}
	for range 20 {
		s.pass(ctx)
		s.work.Wait()
		clk.Advance(time.Second)
		if running(rt) == want {
			break
		}
	}
	if n := running(rt); n != want {
		b.Fatalf("%d of %d replicas running after 20 passes", n, want)
	}
	rt.ResetCalls()
	goruntime.GC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return s, rt, m.HeapAlloc
}

func running(rt *fake.Fake) int {
	cs, _ := rt.List(context.Background(), "")
	n := 0
	for _, c := range cs {
		if c.State == runtime.Running {
			n++
		}
	}
	return n
}

// BenchmarkScalePass times one full pass (observe every container, plan
// every project, write the slots' memory) over a converged stack, and
// reports the heap the daemon holds with it.
func BenchmarkScalePass(b *testing.B) {
	for _, c := range []struct{ projects, services, replicas int }{{1, 500, 4}, {10, 50, 4}} {
		b.Run(fmt.Sprintf("%dx%dx%d", c.projects, c.services, c.replicas), func(b *testing.B) {
			s, rt, heap := converged(b, ScaleStack(c.projects, c.services, c.replicas))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s.pass(ctx)
				rt.ResetCalls() // the fake's call record would grow with b.N
			}
			b.StopTimer()
			s.work.Wait()
			for _, call := range rt.Calls() {
				if call.Method != fake.MethodList {
					b.Fatalf("a converged stack got %s", call)
				}
			}
			b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
		})
	}
}
