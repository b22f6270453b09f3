package supervisor

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// Replica is one desired slot (or a container due for removal) as `tend ps` shows it.
type Replica struct {
	Project   string    `json:"project"`
	Service   string    `json:"service"`
	Slot      int       `json:"slot"`
	Container string    `json:"container"` // name; empty while the slot has none
	ID        string    `json:"id,omitempty"`
	State     string    `json:"state"` // the engine's state, or pending / gave-up when there is no container
	Health    string    `json:"health"`
	ExitCode  int       `json:"exit_code"`
	Restarts  int       `json:"restarts"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Live is the liveness verdict: passing, failing or unknown, from the
	// x-tend liveness probe or else the engine's health check; "-" without either.
	Live string `json:"live"`
	// Ready: running the current spec and ready by its readiness probe (or
	// healthy by its health check) where it has one; or a job that completed.
	Ready bool `json:"ready"`
	// Probe is the last check's result and age, e.g. "HTTP 503: sick (2s ago)".
	Probe string `json:"probe,omitempty"`
	// Failed: tend will not bring it up without a person (gave up, or a job that failed).
	Failed bool   `json:"failed"`
	Note   string `json:"note,omitempty"`
	// Quarantine is "quarantined" or "trial" while the service is isolated
	// (quarantine.go); NextTrial is when it is next tried half-open. State
	// stays the engine's; `tend ps` shows "quarantined" in its place.
	Quarantine string    `json:"quarantine,omitempty"`
	NextTrial  time.Time `json:"next_trial,omitzero"`
	// Node is, in a cluster, the node the slot is placed on ("" while it is
	// placed nowhere); a slot of another node is State "elsewhere" here.
	Node string `json:"node,omitempty"`
	// Published are, in a cluster, its TCP ports as other nodes reach them, by container port.
	Published map[uint16]netip.AddrPort `json:"published,omitempty"`
}

// Status reports every replica of one project, or of all when project is "".
func (s *Supervisor) Status(ctx context.Context, project string) ([]Replica, error) {
	var recs []store.Record
	if project != "" {
		rec, err := s.cfg.Store.Project(project)
		if err != nil {
			return nil, err
		}
		recs = []store.Record{rec}
	} else {
		var err error
		if recs, err = s.cfg.Store.Projects(); err != nil {
			return nil, err
		}
	}
	all, err := s.cfg.Runtime.List(ctx, project)
	if err != nil {
		return nil, err
	}
	byProject := map[string][]runtime.Container{}
	for _, c := range all {
		byProject[c.Project] = append(byProject[c.Project], c)
	}
	var out []Replica
	for _, rec := range recs {
		hist, err := s.cfg.Store.History(rec.Project.Name)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		waits := s.waits[rec.Project.Name]
		s.mu.Unlock()
		mine := byProject[rec.Project.Name]
		health := s.verdicts(&rec.Project, mine)
		reps := projectStatus(s.counted(&rec.Project), mine, hist, waits, health)
		s.describeChecks(&rec.Project, mine, reps)
		s.describeQuarantine(rec.Project.Name, reps)
		s.describePlacement(rec.Project.Name, reps)
		out = append(out, reps...)
	}
	slices.SortFunc(out, func(a, b Replica) int {
		return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Slot, b.Slot))
	})
	return out, nil
}

// describePlacement names each replica's node, in a cluster.
func (s *Supervisor) describePlacement(project string, reps []Replica) {
	pl := s.cfg.Placement
	if pl == nil {
		return
	}
	placed, self := pl.Placed(project), pl.Node()
	for i := range reps {
		r := &reps[i]
		r.Node = placed[reconcile.SlotKey{Service: r.Service, Slot: r.Slot}]
		if r.Node != self && r.Container == "" {
			r.State = "elsewhere"
			r.Note = "runs on " + r.Node
			if r.Node == "" {
				r.State, r.Note = "pending", "placed on no node yet"
			}
		}
	}
}

func projectStatus(p *spec.Project, all []runtime.Container, hist map[reconcile.SlotKey]reconcile.History, waits []reconcile.Wait,
	health map[string]reconcile.Health) []Replica {
	var out []Replica
	taken := map[string]bool{}
	byService := map[string][]runtime.Container{}
	for _, c := range all {
		byService[c.Service] = append(byService[c.Service], c)
	}
	for _, svc := range p.Services {
		hash := svc.Hash()
		for slot := 1; slot <= svc.Replicas; slot++ {
			k := reconcile.SlotKey{Service: svc.Name, Slot: slot}
			r := Replica{Project: p.Name, Service: svc.Name, Slot: slot, State: "pending", Restarts: hist[k].Restarts}
			if c, ok := slotContainer(byService[svc.Name], p.Name, &svc, k, hash); ok {
				taken[c.ID] = true
				fill(&r, c)
				job := svc.Restart.Condition != spec.RestartAny
				r.Ready = c.Hash == hash && (c.State == runtime.Running && health[c.ID].Ready ||
					job && c.State == runtime.Exited && c.ExitCode == 0 && hist[k].Done)
				if hl := health[c.ID]; hl.Sick && r.Note == "" {
					r.Note = "sick: " + hl.Detail
				}
				r.Failed = hist[k].GaveUp || (svc.Restart.Condition == spec.RestartNone && hist[k].Done && c.ExitCode != 0)
			} else if hist[k].GaveUp {
				r.State, r.Failed = "gave-up", true
			}
			for _, w := range waits {
				if w.Service == svc.Name && w.Slot == slot {
					r.Note = w.Message
				}
			}
			out = append(out, r)
		}
	}
	for _, c := range all {
		if c.Project == p.Name && !taken[c.ID] {
			r := Replica{Project: p.Name, Service: c.Service, Slot: c.Slot, Note: "not in the design; to be removed"}
			if svc, ok := p.Service(c.Service); ok && c.Name == runtime.SurgeName(p.Name, svc, c.Slot) {
				r.Note, r.Ready = "replacement; takes over once ready", health[c.ID].Ready
			}
			fill(&r, c)
			out = append(out, r)
		}
	}
	return out
}

// slotContainer picks the container a person should see for a slot: the one on
// the current spec if there are several, and not a replacement under way.
func slotContainer(all []runtime.Container, project string, svc *spec.Service, k reconcile.SlotKey, hash string) (runtime.Container, bool) {
	var found *runtime.Container
	surge := runtime.SurgeName(project, svc, k.Slot)
	for i, c := range all {
		if c.Project == project && c.Service == k.Service && c.Slot == k.Slot && c.Name != surge {
			if found == nil || c.Hash == hash {
				found = &all[i]
			}
		}
	}
	if found == nil {
		return runtime.Container{}, false
	}
	return *found, true
}

// describeChecks adds the liveness verdict and the last check to each
// replica, from tend's probes or else the engine's health check.
func (s *Supervisor) describeChecks(p *spec.Project, all []runtime.Container, reps []Replica) {
	byName := map[string]runtime.Container{}
	for _, c := range all {
		byName[c.Name] = c
	}
	now := s.cfg.Clock.Now()
	for i := range reps {
		r := &reps[i]
		r.Live = "-"
		c, ok := byName[r.Container]
		svc, known := p.Service(r.Service)
		if !ok || !known || c.State != runtime.Running {
			continue
		}
		switch c.Health {
		case runtime.HealthHealthy:
			r.Live = "passing"
		case runtime.HealthUnhealthy:
			r.Live = "failing"
		case runtime.HealthStarting:
			r.Live = "unknown"
		}
		if c.HealthOutput != "" {
			r.Probe = c.HealthOutput
		}
		ph, probed := s.probes.Status(c.ID)
		if !probed {
			continue
		}
		if svc.Tend.Liveness != nil {
			r.Live = string(ph.Live.Status)
		}
		last := ph.Live.Last
		if svc.Tend.Liveness == nil || ph.Ready.Last.At.After(last.At) {
			last = ph.Ready.Last
		}
		if !last.At.IsZero() {
			r.Probe = fmt.Sprintf("%s (%s ago)", last.Output, now.Sub(last.At).Round(time.Second))
		}
	}
}

func fill(r *Replica, c runtime.Container) {
	r.Container, r.ID, r.Published = c.Name, short(c.ID), c.Published
	r.State, r.Health, r.ExitCode, r.StartedAt = string(c.State), string(c.Health), c.ExitCode, c.StartedAt
	if r.Health == "" {
		r.Health = "-"
	}
	r.Note = strings.TrimSpace(r.Note)
}
