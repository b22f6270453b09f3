// Package metrics is the daemon's own Prometheus metrics, next to the
// proxy's (tend_proxy_*): every journal entry counted by action and reason
// as the journal grows (restarts, replacements, quarantines, breaker
// trips, scale decisions: the heal actions by kind and cause), and the
// replicas', services' and autoscaler's state read from the supervisor at
// each scrape, so a gauge is never stale and costs nothing between scrapes.
package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// Source is the supervisor's state as the scrape reads it.
type Source interface {
	Status(ctx context.Context, project string) ([]supervisor.Replica, error)
	ScaleStatus(ctx context.Context, project string) ([]supervisor.ScaleStatus, error)
}

// Journal is the store's journal as Follow reads it.
type Journal interface {
	Journal(q store.Query) ([]store.Entry, error)
	Appended() <-chan struct{}
}

// Metrics is a prometheus.Collector of the state, plus the actions counter.
type Metrics struct {
	src     Source
	actions *prometheus.CounterVec

	replicas, ready, restarts, quarantine, service *prometheus.Desc
}

// scrapeTimeout bounds one scrape's reading of the supervisor.
const scrapeTimeout = 5 * time.Second

// New registers the daemon's metrics on reg.
func New(reg prometheus.Registerer, src Source) (*Metrics, error) {
	m := &Metrics{
		src: src,
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tend_actions_total",
			Help: "Journal entries since tend started, by project, service, action (restart, replace, quarantine, scale, ...) and reason."},
			[]string{"project", "service", "action", "reason"}),
		replicas: prometheus.NewDesc("tend_replicas", "Replicas by the engine's state (quarantined while the service is).",
			[]string{"project", "service", "state"}, nil),
		ready: prometheus.NewDesc("tend_replicas_ready", "Replicas ready: in rotation, or a job that completed.",
			[]string{"project", "service"}, nil),
		restarts: prometheus.NewDesc("tend_replica_restarts", "Restarts in the slot's current crash streak.",
			[]string{"project", "service", "slot"}, nil),
		quarantine: prometheus.NewDesc("tend_service_quarantined", "1 while the service is quarantined or on a half-open trial (state label).",
			[]string{"project", "service", "state"}, nil),
		service: prometheus.NewDesc("tend_service_replicas", "The service's replica counts: current, ready, desired, and min and max where it is autoscaled.",
			[]string{"project", "service", "count"}, nil),
	}
	for _, c := range []prometheus.Collector{m.actions, m} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Last is the number of the journal's last entry: Follow counts those after it.
func Last(j Journal) uint64 {
	if last, err := j.Journal(store.Query{Limit: 1}); err == nil && len(last) == 1 {
		return last[0].Seq
	}
	return 0
}

// Follow counts the journal's entries numbered after after, until ctx ends.
func (m *Metrics) Follow(ctx context.Context, j Journal, after uint64) error {
	for {
		changed := j.Appended() // taken before the read: no entry falls between
		if es, err := j.Journal(store.Query{After: after}); err == nil {
			for _, e := range es {
				m.actions.WithLabelValues(e.Project, e.Service, e.Action, e.Reason).Inc()
				after = e.Seq
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.replicas, m.ready, m.restarts, m.quarantine, m.service} {
		ch <- d
	}
}

// count is one of a service's replica counts.
type count struct {
	name string
	n    int
}

// Collect reads the supervisor once; a scrape during an engine outage gets no state gauges.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	type key struct{ project, service string }
	if rs, err := m.src.Status(ctx, ""); err == nil {
		states := map[key]map[string]int{}
		ready := map[key]int{}
		isolated := map[key]string{}
		for _, r := range rs {
			k := key{r.Project, r.Service}
			state := r.State
			if r.Quarantine != "" {
				state, isolated[k] = "quarantined", r.Quarantine
			}
			if states[k] == nil {
				states[k] = map[string]int{}
			}
			states[k][state]++
			if r.Ready {
				ready[k]++
			}
			ch <- prometheus.MustNewConstMetric(m.restarts, prometheus.GaugeValue, float64(r.Restarts), r.Project, r.Service, strconv.Itoa(r.Slot))
		}
		for k, by := range states {
			for state, n := range by {
				ch <- prometheus.MustNewConstMetric(m.replicas, prometheus.GaugeValue, float64(n), k.project, k.service, state)
			}
			ch <- prometheus.MustNewConstMetric(m.ready, prometheus.GaugeValue, float64(ready[k]), k.project, k.service)
		}
		for k, state := range isolated {
			ch <- prometheus.MustNewConstMetric(m.quarantine, prometheus.GaugeValue, 1, k.project, k.service, state)
		}
	}
	if ss, err := m.src.ScaleStatus(ctx, ""); err == nil {
		for _, s := range ss {
			counts := []count{{"current", s.Current}, {"ready", s.Ready}, {"desired", s.Desired}}
			if s.Max > 0 { // autoscaled
				counts = append(counts, count{"min", s.Min}, count{"max", s.Max})
			}
			for _, c := range counts {
				ch <- prometheus.MustNewConstMetric(m.service, prometheus.GaugeValue, float64(c.n), s.Project, s.Service, c.name)
			}
		}
	}
}
