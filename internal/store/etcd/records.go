package etcdstore

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tend-sh/tend/internal/quarantine"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/rollout"
	"github.com/tend-sh/tend/internal/store"
)

// History returns the memory of every slot of project that has one.
func (s *Store) History(project string) (map[reconcile.SlotKey]reconcile.History, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	byKey, err := list[reconcile.History](ctx, s, s.key("slots", project, ""))
	if err != nil {
		return nil, fmt.Errorf("store: read slots of %s: %w", project, err)
	}
	out := make(map[reconcile.SlotKey]reconcile.History, len(byKey))
	for rest, h := range byKey {
		i := strings.LastIndexByte(rest, '/')
		if i < 0 {
			continue
		}
		slot, err := strconv.Atoi(rest[i+1:])
		if err != nil {
			continue
		}
		out[reconcile.SlotKey{Service: rest[:i], Slot: slot}] = h
	}
	return out, nil
}

// PutHistory writes each slot's memory to its own key, so hosts writing
// other slots of the project lose nothing; a zero History deletes the key.
func (s *Store) PutHistory(project string, hs map[reconcile.SlotKey]reconcile.History) error {
	if len(hs) == 0 {
		return nil
	}
	ws := make([]write, 0, len(hs))
	for k, h := range hs {
		w, err := putOrDelete(s.key("slots", project, k.Service, strconv.Itoa(k.Slot)), h, h.Equal(reconcile.History{}))
		if err != nil {
			return fmt.Errorf("store: write slots of %s: %w", project, err)
		}
		ws = append(ws, w)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.apply(ctx, ws); err != nil {
		return fmt.Errorf("store: write slots of %s: %w", project, err)
	}
	return nil
}

// Counts returns the chosen counts of a project's services, by service.
func (s *Store) Counts(project string) (map[string]store.Count, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	out, err := list[store.Count](ctx, s, s.key("counts", project, ""))
	if err != nil {
		return nil, fmt.Errorf("store: read counts of %s: %w", project, err)
	}
	return out, nil
}

// PutCount stores a service's chosen count; one with a zero Updated deletes it.
func (s *Store) PutCount(project, service string, n store.Count) error {
	w, err := putOrDelete(s.key("counts", project, service), n, n.Updated.IsZero())
	if err == nil {
		ctx, cancel := s.ctx()
		defer cancel()
		err = s.apply(ctx, []write{w})
	}
	if err != nil {
		return fmt.Errorf("store: put count of %s/%s: %w", project, service, err)
	}
	return nil
}

func (s *Store) Quarantine(project string) (map[string]quarantine.State, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	out, err := list[quarantine.State](ctx, s, s.key("quarantine", project, ""))
	if err != nil {
		return nil, fmt.Errorf("store: read quarantine of %s: %w", project, err)
	}
	return out, nil
}

func (s *Store) PutQuarantine(project string, states map[string]quarantine.State) error {
	if len(states) == 0 {
		return nil
	}
	ws := make([]write, 0, len(states))
	for svc, st := range states {
		w, err := putOrDelete(s.key("quarantine", project, svc), st, st == (quarantine.State{}))
		if err != nil {
			return fmt.Errorf("store: write quarantine of %s: %w", project, err)
		}
		ws = append(ws, w)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.apply(ctx, ws); err != nil {
		return fmt.Errorf("store: write quarantine of %s: %w", project, err)
	}
	return nil
}

func (s *Store) Rollouts(project string) (map[string]rollout.State, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	out, err := list[rollout.State](ctx, s, s.key("rollouts", project, ""))
	if err != nil {
		return nil, fmt.Errorf("store: read rollouts of %s: %w", project, err)
	}
	return out, nil
}

// PutRollout stores a service's rollout; one with no Target deletes it.
func (s *Store) PutRollout(project, service string, st rollout.State) error {
	w, err := putOrDelete(s.key("rollouts", project, service), st, st.Target == "")
	if err == nil {
		ctx, cancel := s.ctx()
		defer cancel()
		err = s.apply(ctx, []write{w})
	}
	if err != nil {
		return fmt.Errorf("store: put rollout of %s/%s: %w", project, service, err)
	}
	return nil
}
