package supervisor

import (
	"context"
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/runtime"
)

// cpuMeter turns the engine's cumulative CPU time of each replica into the
// cores it used between two evaluations, for autoscale's cpu target.
type cpuMeter struct {
	mu   sync.Mutex
	last map[string]cpuSample // the previous reading, by container
}

type cpuSample struct {
	used time.Duration
	at   time.Time
}

// cpuReadTimeout bounds one reading: a slow engine costs the autoscaler a
// figure (unknown: no action), not the pass its time.
const cpuReadTimeout = 2 * time.Second

// cores is the mean cores per replica over ids since their last readings,
// or -1 when no replica has two readings yet (or the engine did not answer).
func (m *cpuMeter) cores(ctx context.Context, rt runtime.Runtime, ids []string) float64 {
	ctx, cancel := context.WithTimeout(ctx, cpuReadTimeout)
	defer cancel()
	read := make([]cpuSample, len(ids))
	ok := make([]bool, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			used, at, err := rt.CPUTime(ctx, id)
			read[i], ok[i] = cpuSample{used, at}, err == nil
		})
	}
	wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		m.last = map[string]cpuSample{}
	}
	sum, n := 0.0, 0
	for i, id := range ids {
		if !ok[i] {
			continue
		}
		prev, seen := m.last[id]
		m.last[id] = read[i]
		if dt := read[i].at.Sub(prev.at); seen && dt > 0 && read[i].used >= prev.used {
			sum += float64(read[i].used-prev.used) / float64(dt)
			n++
		}
	}
	if n == 0 {
		return -1
	}
	return sum / float64(n)
}

// forget drops the readings of containers that are gone.
func (m *cpuMeter) forget(live map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.last {
		if !live[id] {
			delete(m.last, id)
		}
	}
}
