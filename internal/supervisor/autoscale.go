package supervisor

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/scale"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// counts holds the replica counts chosen apart from the spec (store.Count),
// as the supervisor works with them: read from the store once per project,
// written back when they change. The autoscaler's wishes change every
// evaluation and live here only; a restarted tend starts them afresh.
type counts struct {
	mu     sync.Mutex
	loaded map[string]bool           // projects read from the store
	byKey  map[string]store.Count    // by project/service
	next   map[string]time.Time      // the next evaluation, by project/service
	last   map[string]scale.Decision // the last decision that changed a count, for ps
	figs   map[string]scale.Observed // the figures of the last evaluation, for ps
}

func countKey(project, service string) string { return project + "/" + service }

// load reads a project's counts into memory once.
func (s *Supervisor) loadCounts(project string) {
	c := &s.counts
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded[project] {
		return
	}
	stored, err := s.cfg.Store.Counts(project)
	if err != nil {
		s.cfg.Log.Error("read counts", "project", project, "err", err)
		return
	}
	if c.loaded == nil {
		c.loaded, c.byKey, c.next = map[string]bool{}, map[string]store.Count{}, map[string]time.Time{}
		c.last, c.figs = map[string]scale.Decision{}, map[string]scale.Observed{}
	}
	for svc, n := range stored {
		c.byKey[countKey(project, svc)] = n
	}
	c.loaded[project] = true
}

// forgetCounts drops a project's counts from memory once it is down (the
// store dropped them with the project), so one brought up again starts afresh.
func (s *Supervisor) forgetCounts(project string) {
	c := &s.counts
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.loaded, project)
	for _, m := range []map[string]store.Count{c.byKey} {
		for k := range m {
			if strings.HasPrefix(k, project+"/") {
				delete(m, k)
			}
		}
	}
}

// putCount keeps a service's count in memory and in the store.
func (s *Supervisor) putCount(project, service string, n store.Count) {
	s.counts.mu.Lock()
	if n.Updated.IsZero() {
		delete(s.counts.byKey, countKey(project, service))
	} else {
		s.counts.byKey[countKey(project, service)] = n
	}
	s.counts.mu.Unlock()
	if err := s.cfg.Store.PutCount(project, service, n); err != nil {
		s.cfg.Log.Error("write count", "project", project, "service", service, "err", err)
	}
}

// autoscale runs the autoscaler over the project's autoscaled services and
// returns the project with each service's count as chosen (by the
// autoscaler or `tend scale`), for the reconciler, and when to evaluate next.
func (s *Supervisor) autoscale(ctx context.Context, p *spec.Project, cs []runtime.Container, health map[string]reconcile.Health) (*spec.Project, time.Time) {
	s.loadCounts(p.Name)
	var stats []proxy.ServiceStats
	var wake time.Time
	for i := range p.Services {
		svc := &p.Services[i]
		key := countKey(p.Name, svc.Name)
		s.counts.mu.Lock()
		n, ok := s.counts.byKey[key]
		next := s.counts.next[key]
		s.counts.mu.Unlock()
		switch {
		case ok && n.Pinned && svc.Tend.Autoscale == nil && n.FileReplicas != svc.Replicas:
			s.putCount(p.Name, svc.Name, store.Count{}) // the file changed the count: it wins again
		case svc.Tend.Autoscale == nil || n.Pinned:
		case next.After(s.cfg.Clock.Now()):
			wake = earliest(wake, next)
		default:
			if !ok {
				n = store.Count{Scale: scale.State{Replicas: svc.Tend.Autoscale.Min}}
			}
			if stats == nil {
				stats = s.TrafficStats()
			}
			obs := observeScale(p.Name, svc, cs, health, stats, s.scaleHold(p.Name, svc.Name))
			if svc.Tend.Autoscale.CPU > 0 {
				obs.Figures.CPU = s.cpu.cores(ctx, s.cfg.Runtime, readyIDs(svc, cs, health))
				obs.Figures.Known = obs.Figures.Known || obs.Figures.CPU >= 0
			}
			wake = earliest(wake, s.evaluate(p.Name, svc, n, obs))
		}
	}
	return s.counted(p), wake
}

// evaluate asks the planner about one service, journals a change and keeps it.
// It returns when to evaluate next.
func (s *Supervisor) evaluate(project string, svc *spec.Service, n store.Count, obs scale.Observed) time.Time {
	now := s.cfg.Clock.Now()
	d := scale.Plan(*svc.Tend.Autoscale, n.Scale, obs, now)
	key := countKey(project, svc.Name)
	s.counts.mu.Lock()
	s.counts.next[key] = d.Wake
	s.counts.figs[key] = obs
	if d.Reason != "" {
		s.counts.last[key] = d
	}
	s.counts.mu.Unlock()
	remembered := d.Reason != "" || (d.State.NoEffect == nil) != (n.Scale.NoEffect == nil) ||
		d.State.Capacity != n.Scale.Capacity || n.Updated.IsZero()
	n.Scale = d.State
	if remembered {
		n.Updated = now
		s.putCount(project, svc.Name, n)
	} else {
		s.counts.mu.Lock()
		s.counts.byKey[key] = n
		s.counts.mu.Unlock()
	}
	if d.Reason != "" {
		s.journal(store.Entry{Project: project, Service: svc.Name, Action: "scale", Reason: string(d.Reason), Message: d.Message})
	}
	return d.Wake
}

// observeScale is what the planner sees of one service: its replicas of the
// current spec, the ready ones, and the proxy's recent figures.
func observeScale(project string, svc *spec.Service, cs []runtime.Container, health map[string]reconcile.Health,
	stats []proxy.ServiceStats, held string) scale.Observed {
	hash := svc.Hash()
	obs := scale.Observed{Held: held, Spec: hash, Figures: scale.Figures{CPU: -1}}
	for _, c := range cs {
		if c.Service != svc.Name || c.State != runtime.Running {
			continue
		}
		if c.Hash != hash && obs.Held == "" {
			obs.Held = "rolling out a new spec"
		}
		obs.Replicas++
		if health[c.ID].Ready {
			obs.Ready++
		}
	}
	for _, st := range stats {
		if st.Project == project && st.Service == svc.Name {
			r := st.Recent
			obs.Figures = scale.Figures{Known: true, Rate: r.Rate, InFlight: float64(r.InFlight), P95: r.P95, P99: r.P99, CPU: -1}
		}
	}
	return obs
}

// readyIDs are the service's ready replicas of its current spec: the ones
// whose CPU the cpu target weighs.
func readyIDs(svc *spec.Service, cs []runtime.Container, health map[string]reconcile.Health) []string {
	hash := svc.Hash()
	var ids []string
	for _, c := range cs {
		if c.Service == svc.Name && c.State == runtime.Running && c.Hash == hash && health[c.ID].Ready {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// scaleHold tells whether a service is held from scaling, and why: a
// quarantined service, or one rolling out, is not scaled.
func (s *Supervisor) scaleHold(project, service string) string {
	if held, cause := s.quarantined(project, service); held {
		return "quarantined: " + cause
	}
	return s.rolling(project, service) // rollout.go
}

// ScaleStatus is one service's count as `tend ps` shows it.
type ScaleStatus struct {
	Project string `json:"project"`
	Service string `json:"service"`
	Current int    `json:"current"` // running replicas
	Ready   int    `json:"ready"`
	Desired int    `json:"desired"`
	Min     int    `json:"min,omitempty"` // Min and Max are set for an autoscaled service
	Max     int    `json:"max,omitempty"`
	Auto    bool   `json:"auto"`   // the autoscaler chooses the count
	Pinned  bool   `json:"pinned"` // `tend scale SERVICE=N` set it
	// Metric is the autoscaler's main figure and Target what it aims at, e.g. "p95 38ms" and "50ms".
	Metric string `json:"metric,omitempty"`
	Target string `json:"target,omitempty"`
	Held   string `json:"held,omitempty"`
	// NoEffect: scaling out did not help; the verdict's figures.
	NoEffect string `json:"no_effect,omitempty"`
	// Last is the last change the autoscaler made: reason and figures.
	Last string `json:"last,omitempty"`
	// Rollout is the service's rollout under way, if any (rollout.go).
	Rollout *RolloutStatus `json:"rollout,omitempty"`
}

// ScaleStatus reports the counts of one project's services, or of all when project is "".
func (s *Supervisor) ScaleStatus(ctx context.Context, project string) ([]ScaleStatus, error) {
	reps, err := s.Status(ctx, project)
	if err != nil {
		return nil, err
	}
	recs, err := s.cfg.Store.Projects()
	if err != nil {
		return nil, err
	}
	var out []ScaleStatus
	for _, rec := range recs {
		if project != "" && rec.Project.Name != project {
			continue
		}
		s.loadCounts(rec.Project.Name)
		p := s.counted(&rec.Project)
		for _, svc := range p.Services {
			out = append(out, s.scaleStatus(p.Name, &svc, reps))
		}
	}
	return out, nil
}

func (s *Supervisor) scaleStatus(project string, svc *spec.Service, reps []Replica) ScaleStatus {
	st := ScaleStatus{Project: project, Service: svc.Name, Desired: svc.Replicas}
	for _, r := range reps {
		if r.Project == project && r.Service == svc.Name && r.State == string(runtime.Running) {
			st.Current++
			if r.Ready {
				st.Ready++
			}
		}
	}
	st.Rollout = s.rolloutStatus(project, svc.Name)
	key := countKey(project, svc.Name)
	s.counts.mu.Lock()
	n := s.counts.byKey[key]
	obs, last := s.counts.figs[key], s.counts.last[key]
	s.counts.mu.Unlock()
	st.Pinned = n.Pinned
	a := svc.Tend.Autoscale
	if a == nil {
		return st
	}
	// A hold is read now: the last evaluation may be a cooldown old.
	st.Min, st.Max, st.Auto, st.Held = a.Min, a.Max, !n.Pinned, cmp.Or(s.scaleHold(project, svc.Name), obs.Held)
	f := obs.Figures
	figure := func(d time.Duration) string {
		if d == 0 {
			return "-" // no timed request
		}
		return d.String()
	}
	switch {
	case a.P95 > 0:
		st.Metric, st.Target = "p95 "+figure(f.P95), a.P95.String()
	case a.P99 > 0:
		st.Metric, st.Target = "p99 "+figure(f.P99), a.P99.String()
	case a.InFlight > 0 && obs.Ready > 0:
		st.Metric, st.Target = fmt.Sprintf("in-flight %.1f", f.InFlight/float64(obs.Ready)), fmt.Sprint(a.InFlight)
	case a.CPU > 0 && f.CPU < 0:
		st.Metric, st.Target = "cpu -", fmt.Sprint(a.CPU) // no two readings yet
	case a.CPU > 0:
		st.Metric, st.Target = fmt.Sprintf("cpu %.2f", f.CPU), fmt.Sprint(a.CPU)
	}
	if v := n.Scale.NoEffect; v != nil {
		st.NoEffect = fmt.Sprintf("%s at %d replicas whatever the load; retried at %.0f in flight", v.Latency, v.Replicas, v.RetryAt())
	}
	if last.Reason != "" {
		st.Last = string(last.Reason) + ": " + last.Message
	}
	return st
}

// counted is p with each service's count as chosen, without evaluating.
func (s *Supervisor) counted(p *spec.Project) *spec.Project {
	s.loadCounts(p.Name)
	out := *p
	out.Services = slices.Clone(p.Services)
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	for i := range out.Services {
		svc := &out.Services[i]
		n, ok := s.counts.byKey[countKey(p.Name, svc.Name)]
		svc.Replicas = store.Replicas(svc, n, ok)
	}
	return &out
}

// Scale pins a service's count (replicas >= 0), or with auto hands it back
// to the autoscaler (or, for a service without autoscale, to its file).
func (s *Supervisor) Scale(project, service string, replicas int, auto bool) (ScaleStatus, error) {
	rec, err := s.cfg.Store.Project(project)
	if err != nil {
		return ScaleStatus{}, err
	}
	svc, ok := rec.Project.Service(service)
	if !ok {
		return ScaleStatus{}, errs.E(errs.NotFound, "project %q has no service %q", project, service)
	}
	if !auto && replicas < 0 {
		return ScaleStatus{}, errs.E(errs.Invalid, "replicas must be 0 or more (got %d)", replicas)
	}
	if !auto && replicas > 1 && svc.ContainerName != "" {
		return ScaleStatus{}, errs.E(errs.Invalid, "service %q has container_name %q, which names one container; it cannot run %d", service, svc.ContainerName, replicas)
	}
	s.loadCounts(project)
	key := countKey(project, service)
	s.counts.mu.Lock()
	n := s.counts.byKey[key]
	delete(s.counts.next, key)
	s.counts.mu.Unlock()
	now := s.cfg.Clock.Now()
	var msg string
	switch {
	case auto && svc.Tend.Autoscale != nil:
		// The autoscaler starts from the pinned count, with no verdict: a person asked it to look again.
		from := n.Scale.Replicas
		if n.Pinned {
			from = n.Replicas
		}
		n = store.Count{Scale: scale.State{Replicas: from, Changed: now}, Updated: now}
		msg = fmt.Sprintf("autoscaling from %d replicas, within %d-%d", from, svc.Tend.Autoscale.Min, svc.Tend.Autoscale.Max)
	case auto:
		n = store.Count{}
		msg = fmt.Sprintf("back to the file's %d replicas", svc.Replicas)
	default:
		n.Pinned, n.Replicas, n.FileReplicas, n.Updated = true, replicas, svc.Replicas, now
		msg = fmt.Sprintf("pinned at %d replicas", replicas)
		if svc.Tend.Autoscale != nil {
			msg += " until `tend scale " + service + " --auto`"
		}
	}
	s.putCount(project, service, n)
	s.journal(store.Entry{Project: project, Service: service, Action: "scale", Reason: "requested", Message: msg})
	s.Poke()
	p := s.counted(&rec.Project)
	got, _ := p.Service(service)
	return s.scaleStatus(project, got, nil), nil
}
