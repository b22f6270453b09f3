package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/quarantine"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/rollout"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// Config makes a Store; zero values take the defaults.
type Config struct {
	Client      *clientv3.Client // required; the caller owns it
	Prefix      string           // default "/tend/store/"
	MaxEntries  int              // journal entries kept (store.DefaultMaxEntries)
	MaxVersions int              // versions kept per project (store.DefaultMaxVersions)
	Timeout     time.Duration    // of each call (5 s)
}

// Store is a store.Store in etcd.
type Store struct {
	cfg    Config
	cli    *clientv3.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	appended chan struct{}
}

var _ store.Store = (*Store)(nil)

// New returns a Store on cfg.Client and starts following the journal, so
// that Appended fires for an Append made by any host.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("etcdstore: no client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/tend/store/"
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = store.DefaultMaxEntries
	}
	if cfg.MaxVersions <= 0 {
		cfg.MaxVersions = store.DefaultMaxVersions
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{cfg: cfg, cli: cfg.Client, cancel: cancel, done: make(chan struct{}), appended: make(chan struct{})}
	go s.follow(ctx)
	return s, nil
}

// Close stops following the journal; the client stays open.
func (s *Store) Close() error {
	s.cancel()
	<-s.done
	return nil
}

func (s *Store) key(parts ...string) string { return s.cfg.Prefix + strings.Join(parts, "/") }

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.Timeout)
}

// fail words an etcd error: one that says etcd cannot be reached is Unavailable.
func fail(what string, err error) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	return errs.Wrap(errs.Unavailable, fmt.Errorf("store: %s: %w", what, err))
}

func (s *Store) get(what, key string, v any) (int64, bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return 0, false, fail(what, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, false, nil
	}
	return resp.Kvs[0].ModRevision, true, json.Unmarshal(resp.Kvs[0].Value, v)
}

// list reads every key under prefix, by the rest of its key.
func (s *Store) list(what, prefix string) (map[string][]byte, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fail(what, err)
	}
	out := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), prefix)] = kv.Value
	}
	return out, nil
}

// update runs a read-modify-write of key until no other host wrote it between.
func (s *Store) update(what, key string, change func(rev int64, found bool, raw []byte) ([]clientv3.Op, error)) error {
	for {
		ctx, cancel := s.ctx()
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			cancel()
			return fail(what, err)
		}
		var rev int64
		var raw []byte
		found := len(resp.Kvs) == 1
		if found {
			rev, raw = resp.Kvs[0].ModRevision, resp.Kvs[0].Value
		}
		ops, err := change(rev, found, raw)
		if err != nil {
			cancel()
			return err
		}
		txn, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(ops...).Commit()
		cancel()
		if err != nil {
			return fail(what, err)
		}
		if txn.Succeeded {
			return nil
		}
	}
}

func put(key string, v any) clientv3.Op {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the store's own types always marshal
	}
	return clientv3.OpPut(key, string(b))
}

func notFound(name string) error { return errs.E(errs.NotFound, "project %q not found", name) }

func (s *Store) PutProject(p spec.Project, now time.Time) (store.Record, error) {
	var rec store.Record
	err := s.update("put project "+p.Name, s.key("projects", p.Name), func(_ int64, found bool, raw []byte) ([]clientv3.Op, error) {
		var old store.Record
		if found {
			if err := json.Unmarshal(raw, &old); err != nil {
				return nil, err
			}
		}
		rec = store.Record{Project: p, Version: old.Version + 1, Updated: now}
		ops := []clientv3.Op{put(s.key("projects", p.Name), rec), put(s.versionKey(p.Name, rec.Version), p)}
		if gone := rec.Version - s.cfg.MaxVersions; gone > 0 {
			ops = append(ops, clientv3.OpDelete(s.versionKey(p.Name, gone)))
		}
		return ops, nil
	})
	if err != nil {
		return store.Record{}, err
	}
	return rec, nil
}

func (s *Store) versionKey(name string, v int) string {
	return s.key("versions", name, fmt.Sprintf("%08d", v))
}

func (s *Store) MarkDeleting(name string, volumes bool) error {
	return s.update("mark "+name+" deleting", s.key("projects", name), func(_ int64, found bool, raw []byte) ([]clientv3.Op, error) {
		if !found {
			return nil, notFound(name)
		}
		var rec store.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, err
		}
		rec.Deleting, rec.Volumes = true, rec.Volumes || volumes
		return []clientv3.Op{put(s.key("projects", name), rec)}, nil
	})
}

func (s *Store) DeleteProject(name string) error {
	return s.update("delete project "+name, s.key("projects", name), func(_ int64, found bool, raw []byte) ([]clientv3.Op, error) {
		if !found {
			return nil, notFound(name)
		}
		var rec store.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, err
		}
		if !rec.Deleting {
			return nil, errs.E(errs.Conflict, "project %q was brought up again while it was being taken down", name)
		}
		ops := []clientv3.Op{clientv3.OpDelete(s.key("projects", name))}
		for _, kind := range []string{"versions", "slots", "counts", "quarantine", "rollouts"} {
			ops = append(ops, clientv3.OpDelete(s.key(kind, name)+"/", clientv3.WithPrefix()))
		}
		return ops, nil
	})
}

func (s *Store) Project(name string) (store.Record, error) {
	var rec store.Record
	_, found, err := s.get("read project "+name, s.key("projects", name), &rec)
	if err == nil && !found {
		err = notFound(name)
	}
	return rec, err
}

func (s *Store) Projects() ([]store.Record, error) {
	all, err := s.list("list projects", s.key("projects")+"/")
	if err != nil {
		return nil, err
	}
	out := make([]store.Record, 0, len(all))
	for _, name := range sortedKeys(all) {
		var rec store.Record
		if err := json.Unmarshal(all[name], &rec); err != nil {
			return nil, fmt.Errorf("store: project %s: %w", name, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (s *Store) History(project string) (map[reconcile.SlotKey]reconcile.History, error) {
	all, err := s.list("read slots of "+project, s.key("slots", project)+"/")
	if err != nil {
		return nil, err
	}
	out := map[reconcile.SlotKey]reconcile.History{}
	for rest, raw := range all {
		i := strings.LastIndexByte(rest, '/')
		if i < 0 {
			continue
		}
		slot, err := strconv.Atoi(rest[i+1:])
		if err != nil {
			continue
		}
		var h reconcile.History
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, fmt.Errorf("store: slot %s/%s: %w", project, rest, err)
		}
		out[reconcile.SlotKey{Service: rest[:i], Slot: slot}] = h
	}
	return out, nil
}

// PutHistory writes each slot's memory as its own key: hosts that run
// different slots of one project write side by side.
func (s *Store) PutHistory(project string, hs map[reconcile.SlotKey]reconcile.History) error {
	var ops []clientv3.Op
	for k, h := range hs {
		key := s.key("slots", project, k.Service, strconv.Itoa(k.Slot))
		if h.Equal(reconcile.History{}) {
			ops = append(ops, clientv3.OpDelete(key))
		} else {
			ops = append(ops, put(key, h))
		}
	}
	return s.commit("write slots of "+project, ops)
}

// commit runs ops in transactions of at most 100 (etcd refuses more than 128).
func (s *Store) commit(what string, ops []clientv3.Op) error {
	for len(ops) > 0 {
		n := min(len(ops), 100)
		ctx, cancel := s.ctx()
		_, err := s.cli.Txn(ctx).Then(ops[:n]...).Commit()
		cancel()
		if err != nil {
			return fail(what, err)
		}
		ops = ops[n:]
	}
	return nil
}

func (s *Store) Counts(project string) (map[string]store.Count, error) {
	return readAll[store.Count](s, "counts", project)
}

func (s *Store) PutCount(project, service string, n store.Count) error {
	key := s.key("counts", project, service)
	if n.Updated.IsZero() {
		return s.commit("delete count of "+project+"/"+service, []clientv3.Op{clientv3.OpDelete(key)})
	}
	return s.commit("put count of "+project+"/"+service, []clientv3.Op{put(key, n)})
}

func (s *Store) Quarantine(project string) (map[string]quarantine.State, error) {
	return readAll[quarantine.State](s, "quarantine", project)
}

func (s *Store) PutQuarantine(project string, states map[string]quarantine.State) error {
	var ops []clientv3.Op
	for svc, st := range states {
		key := s.key("quarantine", project, svc)
		if st == (quarantine.State{}) {
			ops = append(ops, clientv3.OpDelete(key))
		} else {
			ops = append(ops, put(key, st))
		}
	}
	return s.commit("put quarantine of "+project, ops)
}

func (s *Store) Rollouts(project string) (map[string]rollout.State, error) {
	return readAll[rollout.State](s, "rollouts", project)
}

func (s *Store) PutRollout(project, service string, st rollout.State) error {
	key := s.key("rollouts", project, service)
	if st.Target == "" {
		return s.commit("delete rollout of "+project+"/"+service, []clientv3.Op{clientv3.OpDelete(key)})
	}
	return s.commit("put rollout of "+project+"/"+service, []clientv3.Op{put(key, st)})
}

// readAll reads a project's records of one kind, by service.
func readAll[T any](s *Store, kind, project string) (map[string]T, error) {
	all, err := s.list("read "+kind+" of "+project, s.key(kind, project)+"/")
	if err != nil {
		return nil, err
	}
	out := make(map[string]T, len(all))
	for svc, raw := range all {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("store: %s of %s/%s: %w", kind, project, svc, err)
		}
		out[svc] = v
	}
	return out, nil
}

func (s *Store) PastVersions(name string) ([]store.Record, error) {
	all, err := s.list("read versions of "+name, s.key("versions", name)+"/")
	if err != nil {
		return nil, err
	}
	keys := sortedKeys(all)
	slices.Reverse(keys)
	var out []store.Record
	for _, k := range keys {
		n, err := strconv.Atoi(k)
		if err != nil {
			continue
		}
		var p spec.Project
		if err := json.Unmarshal(all[k], &p); err != nil {
			return nil, fmt.Errorf("store: version %d of %s: %w", n, name, err)
		}
		out = append(out, store.Record{Project: p, Version: n})
	}
	return out, nil
}

func (s *Store) journalKey(seq uint64) string { return s.key("journal", fmt.Sprintf("%020d", seq)) }

// Append numbers the entries from the cluster-wide counter, in the same
// transaction that writes them, and drops what falls out of retention.
func (s *Store) Append(entries ...store.Entry) ([]store.Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	out := slices.Clone(entries)
	counter := s.key("seq", "journal")
	err := s.update("append journal", counter, func(_ int64, found bool, raw []byte) ([]clientv3.Op, error) {
		var last uint64
		if found {
			n, err := strconv.ParseUint(string(raw), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("journal counter %q: %w", raw, err)
			}
			last = n
		}
		ops := make([]clientv3.Op, 0, len(out)+2)
		for i := range out {
			last++
			out[i].Seq = last
			ops = append(ops, put(s.journalKey(last), out[i]))
		}
		ops = append(ops, clientv3.OpPut(counter, strconv.FormatUint(last, 10)))
		if keep := uint64(s.cfg.MaxEntries); last > keep {
			ops = append(ops, clientv3.OpDelete(s.journalKey(0), clientv3.WithRange(s.journalKey(last-keep+1))))
		}
		return ops, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) Journal(q store.Query) ([]store.Entry, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	from := s.journalKey(q.After + 1)
	end := clientv3.GetPrefixRangeEnd(s.key("journal") + "/")
	var out []store.Entry
	// Walk back from the newest, a page at a time, so Limit costs only what it returns.
	for {
		resp, err := s.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(500))
		if err != nil {
			return nil, fail("read journal", err)
		}
		for _, kv := range resp.Kvs {
			var e store.Entry
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				return nil, fmt.Errorf("store: journal %s: %w", kv.Key, err)
			}
			if !q.Matches(e) {
				continue
			}
			out = append(out, e)
			if q.Limit > 0 && len(out) == q.Limit {
				slices.Reverse(out)
				return out, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		end = string(resp.Kvs[len(resp.Kvs)-1].Key) // exclusive: the next page is older
	}
	slices.Reverse(out)
	return out, nil
}

func (s *Store) Appended() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appended
}

func (s *Store) fire() {
	s.mu.Lock()
	close(s.appended)
	s.appended = make(chan struct{})
	s.mu.Unlock()
}

// follow closes Appended's channel at every write to the journal, by any host.
func (s *Store) follow(ctx context.Context) {
	defer close(s.done)
	for ctx.Err() == nil {
		for wr := range s.cli.Watch(clientv3.WithRequireLeader(ctx), s.key("seq", "journal")) {
			if wr.Err() != nil {
				break
			}
			if len(wr.Events) > 0 {
				s.fire()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
			s.fire() // the watch broke: a reader looks again rather than miss an entry
		}
	}
}
