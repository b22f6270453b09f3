package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/store"
)

// Defaults for Config.
const (
	DefaultPrefix  = "/tend/store/"
	DefaultTimeout = 5 * time.Second
)

// A transaction stays within etcd's default limits (128 operations, 1.5 MiB
// a request), which a cluster's members may not have raised.
const (
	maxTxnOps   = 100
	maxTxnBytes = 1 << 20
)

// Config configures a Store; zero values take the defaults.
type Config struct {
	// Client reaches the cluster's etcd. Required; the Store does not close it.
	Client *clientv3.Client
	// Prefix is where the store's keys live (default DefaultPrefix); a
	// missing trailing slash is added.
	Prefix string
	// MaxEntries are the journal entries kept (default store.DefaultMaxEntries).
	MaxEntries int
	// MaxVersions are the desired-state versions kept per project (default
	// store.DefaultMaxVersions).
	MaxVersions int
	// Timeout bounds each call, its retries included (default DefaultTimeout).
	// An Append too large for one transaction has a Timeout per transaction.
	Timeout time.Duration
}

// Store is a store.Store in etcd.
//
// It differs from store.Bolt where one etcd transaction cannot hold what one
// bbolt transaction can: a PutHistory or PutQuarantine of more than about a
// hundred records, and an Append of more than about a hundred entries (or a
// MiB), are split into several transactions, each atomic. An Append that
// fails midway may have written its first transactions' entries; between
// them, other hosts' entries may take numbers. PutProject trims every version
// beyond MaxVersions, not only the one that just fell out, so lowering
// MaxVersions takes effect at the next put. Appended's channel may also close
// without an Append, when the watch had to skip history compacted away.
type Store struct {
	cli *clientv3.Client
	cfg Config

	mu       sync.Mutex
	appended chan struct{}
	notified uint64 // the highest journal number whose Append closed a channel

	stop      context.CancelFunc
	done      chan struct{} // closed when the journal watch has returned
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// New makes a Store on cfg.Client and starts the watch that serves
// Appended for every host's Appends; Close stops it. It reads the journal's
// number once, so etcd must be reachable.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errs.E(errs.Invalid, "etcd store: no client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = store.DefaultMaxEntries
	}
	if cfg.MaxVersions <= 0 {
		cfg.MaxVersions = store.DefaultMaxVersions
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	s := &Store{cli: cfg.Client, cfg: cfg, appended: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := s.ctx()
	defer cancel()
	last, _, rev, err := s.lastSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	s.notified = last
	watchCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	// Watch from just after the read: no Append after New returns is missed.
	go s.watchJournal(watchCtx, rev+1)
	return s, nil
}

// Close stops the journal watch and waits for it; the client stays open.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
	})
	return nil
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.Timeout)
}

// key joins parts under the prefix; a last part "" makes a prefix of keys.
func (s *Store) key(parts ...string) string { return s.cfg.Prefix + strings.Join(parts, "/") }

func (s *Store) projectKey(name string) string { return s.key("projects", name) }
func (s *Store) versionKey(name string, v int) string {
	return s.key("versions", name, fmt.Sprintf("%08d", v))
}
func (s *Store) journalKey(seq uint64) string { return s.key("journal", fmt.Sprintf("%020d", seq)) }
func (s *Store) journalPrefix() string        { return s.key("journal", "") }
func (s *Store) seqKey() string               { return s.key("seq", "journal") }

// etcdErr gives an error of the etcd client its kind. A request etcd refuses
// as malformed is tend's fault (Internal); anything else is etcd unreachable,
// leaderless or slow (Unavailable). etcd's space alarm also carries ENOSPC,
// so store.Full tells it as the full disk it is.
func etcdErr(err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrNoSpace):
		return errs.Wrap(errs.Unavailable, fmt.Errorf("etcd: %w (%w)", err, syscall.ENOSPC))
	case errors.Is(err, rpctypes.ErrTooManyOps), errors.Is(err, rpctypes.ErrRequestTooLarge),
		errors.Is(err, rpctypes.ErrDuplicateKey):
		return errs.Wrap(errs.Internal, fmt.Errorf("etcd: %w", err))
	}
	return errs.Wrap(errs.Unavailable, fmt.Errorf("etcd: %w", err))
}

// get reads key's JSON into v and returns its ModRevision: 0 when the key
// is missing, v then untouched.
func (s *Store) get(ctx context.Context, key string, v any) (int64, error) {
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return 0, etcdErr(err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	kv := resp.Kvs[0]
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return 0, fmt.Errorf("%s: %w", kv.Key, err)
	}
	return kv.ModRevision, nil
}

// commit runs ops if key still has ModRevision rev (0: key missing) and
// reports whether it did.
func (s *Store) commit(ctx context.Context, key string, rev int64, ops ...clientv3.Op) (bool, error) {
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(ops...).Commit()
	if err != nil {
		return false, etcdErr(err)
	}
	return resp.Succeeded, nil
}

// list decodes every key under prefix, by the rest of its key.
func list[T any](ctx context.Context, s *Store, prefix string) (map[string]T, error) {
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, etcdErr(err)
	}
	out := make(map[string]T, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		out[strings.TrimPrefix(string(kv.Key), prefix)] = v
	}
	return out, nil
}

// write is one record of a batch: a put of val, or a delete.
type write struct {
	key string
	val []byte // nil: delete
}

// putOrDelete marshals v to a put of key, or a delete when zero.
func putOrDelete(key string, v any, zero bool) (write, error) {
	if zero {
		return write{key: key}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return write{}, err
	}
	return write{key: key, val: b}, nil
}

// apply writes ws in as few transactions as etcd's limits allow. The keys
// are independent records, so no transaction compares anything.
func (s *Store) apply(ctx context.Context, ws []write) error {
	var ops []clientv3.Op
	size := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := s.cli.Txn(ctx).Then(ops...).Commit()
		ops, size = ops[:0], 0
		if err != nil {
			return etcdErr(err)
		}
		return nil
	}
	for _, w := range ws {
		n := len(w.key) + len(w.val)
		if len(ops) == maxTxnOps || (len(ops) > 0 && size+n > maxTxnBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		if w.val == nil {
			ops = append(ops, clientv3.OpDelete(w.key))
		} else {
			ops = append(ops, clientv3.OpPut(w.key, string(w.val)))
		}
		size += n
	}
	return flush()
}

// lastSeq reads the last journal number given, the counter's ModRevision
// (0 before the first Append) and the revision of the read.
func (s *Store) lastSeq(ctx context.Context) (last uint64, modRev, rev int64, err error) {
	resp, err := s.cli.Get(ctx, s.seqKey())
	if err != nil {
		return 0, 0, 0, etcdErr(err)
	}
	if len(resp.Kvs) == 0 {
		return 0, 0, resp.Header.Revision, nil
	}
	kv := resp.Kvs[0]
	if last, err = strconv.ParseUint(string(kv.Value), 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %w", kv.Key, err)
	}
	return last, kv.ModRevision, resp.Header.Revision, nil
}
