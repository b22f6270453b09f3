package etcdstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

func notFound(name string) error { return errs.E(errs.NotFound, "project %q not found", name) }

// PutProject stores the next version of p: the version number is read and
// written in one transaction, retried when another host put meanwhile.
func (s *Store) PutProject(p spec.Project, now time.Time) (store.Record, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	key := s.projectKey(p.Name)
	pJSON, err := json.Marshal(p)
	if err != nil {
		return store.Record{}, fmt.Errorf("store: put project %s: %w", p.Name, err)
	}
	for {
		var old store.Record
		rev, err := s.get(ctx, key, &old)
		if err != nil {
			return store.Record{}, fmt.Errorf("store: put project %s: %w", p.Name, err)
		}
		rec := store.Record{Project: p, Version: old.Version + 1, Updated: now}
		v, err := json.Marshal(rec)
		if err != nil {
			return store.Record{}, fmt.Errorf("store: put project %s: %w", p.Name, err)
		}
		ops := []clientv3.Op{clientv3.OpPut(key, string(v)), clientv3.OpPut(s.versionKey(p.Name, rec.Version), string(pJSON))}
		if cut := rec.Version - s.cfg.MaxVersions; cut > 0 {
			// Every version up to cut, in one range: [versions/name/, versions/name/cut+1).
			ops = append(ops, clientv3.OpDelete(s.key("versions", p.Name, ""), clientv3.WithRange(s.versionKey(p.Name, cut+1))))
		}
		ok, err := s.commit(ctx, key, rev, ops...)
		if err != nil {
			return store.Record{}, fmt.Errorf("store: put project %s: %w", p.Name, err)
		}
		if ok {
			return rec, nil
		}
	}
}

func (s *Store) MarkDeleting(name string, volumes bool) error {
	ctx, cancel := s.ctx()
	defer cancel()
	key := s.projectKey(name)
	for {
		var rec store.Record
		rev, err := s.get(ctx, key, &rec)
		if err == nil && rev == 0 {
			err = notFound(name)
		}
		if err != nil {
			return fmt.Errorf("store: mark %s deleting: %w", name, err)
		}
		rec.Deleting, rec.Volumes = true, rec.Volumes || volumes
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("store: mark %s deleting: %w", name, err)
		}
		ok, err := s.commit(ctx, key, rev, clientv3.OpPut(key, string(b)))
		if err != nil {
			return fmt.Errorf("store: mark %s deleting: %w", name, err)
		}
		if ok {
			return nil
		}
	}
}

// DeleteProject deletes the record and everything kept by project in one
// transaction, provided the record is still the one marked deleting.
func (s *Store) DeleteProject(name string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	key := s.projectKey(name)
	ops := []clientv3.Op{clientv3.OpDelete(key)}
	for _, kind := range []string{"versions", "slots", "counts", "quarantine", "rollouts"} {
		ops = append(ops, clientv3.OpDelete(s.key(kind, name, ""), clientv3.WithPrefix()))
	}
	for {
		var rec store.Record
		rev, err := s.get(ctx, key, &rec)
		switch {
		case err != nil:
		case rev == 0:
			err = notFound(name)
		case !rec.Deleting:
			err = errs.E(errs.Conflict, "project %q was brought up again while it was being taken down", name)
		}
		if err != nil {
			return fmt.Errorf("store: delete project %s: %w", name, err)
		}
		ok, err := s.commit(ctx, key, rev, ops...)
		if err != nil {
			return fmt.Errorf("store: delete project %s: %w", name, err)
		}
		if ok {
			return nil
		}
	}
}

// Project returns the project's record; a missing one is the NotFound that
// store.Bolt returns, unwrapped.
func (s *Store) Project(name string) (store.Record, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var rec store.Record
	rev, err := s.get(ctx, s.projectKey(name), &rec)
	if err != nil {
		return store.Record{}, fmt.Errorf("store: read project %s: %w", name, err)
	}
	if rev == 0 {
		return store.Record{}, notFound(name)
	}
	return rec, nil
}

// Projects returns every project's record, by name.
func (s *Store) Projects() ([]store.Record, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.key("projects", ""), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: list projects: %w", etcdErr(err))
	}
	var out []store.Record
	for _, kv := range resp.Kvs {
		var rec store.Record
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("store: list projects: %s: %w", kv.Key, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// PastVersions returns the kept versions of a project's desired state,
// newest first (the current one included).
func (s *Store) PastVersions(name string) ([]store.Record, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	prefix := s.key("versions", name, "")
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	if err != nil {
		return nil, fmt.Errorf("store: read versions of %s: %w", name, etcdErr(err))
	}
	var out []store.Record
	for _, kv := range resp.Kvs {
		n, err := strconv.Atoi(strings.TrimPrefix(string(kv.Key), prefix))
		if err != nil {
			continue
		}
		var p spec.Project
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			return nil, fmt.Errorf("store: read versions of %s: %s: %w", name, kv.Key, err)
		}
		out = append(out, store.Record{Project: p, Version: n})
	}
	return out, nil
}
