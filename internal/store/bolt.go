package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/spec"
)

var (
	bucketProjects = []byte("projects") // name -> Record
	bucketVersions = []byte("versions") // name/00000007 -> spec.Project
	bucketSlots    = []byte("slots")    // project/service/slot -> reconcile.History
	bucketJournal  = []byte("journal")  // big-endian seq -> Entry
)

// Defaults for BoltConfig.
const (
	DefaultMaxEntries  = 100_000
	DefaultMaxVersions = 20
)

// BoltConfig configures a Bolt store; zero values take the defaults.
type BoltConfig struct {
	Path        string // the database file
	MaxEntries  int    // journal entries kept; the oldest go first
	MaxVersions int    // desired-state versions kept per project
	// Recover opens a damaged file (see Damage) by keeping what can be read
	// of it in a new file, the damaged one moved aside; without it, a damaged
	// file is an error and is left as it is. Recovered says what was lost.
	Recover bool
}

// Bolt is a Store on a bbolt file.
type Bolt struct {
	db  *bolt.DB
	cfg BoltConfig

	mu        sync.Mutex
	appended  chan struct{}
	recovered *Damage
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating if needed) the store at cfg.Path. An existing
// file is read in full first: a damaged one is a *Damage error, unless
// cfg.Recover.
func OpenBolt(cfg BoltConfig) (*Bolt, error) {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxVersions <= 0 {
		cfg.MaxVersions = DefaultMaxVersions
	}
	recovered, err := examine(cfg)
	if err != nil {
		return nil, err
	}
	db, err := openWritable(cfg.Path)
	var fault *pageFault
	if errors.As(err, &fault) {
		// The records read, but bbolt's own pages (the free list) do not.
		if recovered, err = recoverUnwritable(cfg, fault); err != nil {
			return nil, err
		}
		db, err = openWritable(cfg.Path)
	}
	if err != nil {
		return nil, err
	}
	return &Bolt{db: db, cfg: cfg, appended: make(chan struct{}), recovered: recovered}, nil
}

// Recovered is the damage a recovering open found, nil when the file was whole.
func (s *Bolt) Recovered() *Damage { return s.recovered }

func (s *Bolt) Close() error { return s.db.Close() }

func (s *Bolt) PutProject(p spec.Project, now time.Time) (Record, error) {
	var rec Record
	err := s.db.Update(func(tx *bolt.Tx) error {
		projects := tx.Bucket(bucketProjects)
		if old := projects.Get([]byte(p.Name)); old != nil {
			if err := json.Unmarshal(old, &rec); err != nil {
				return err
			}
		}
		rec = Record{Project: p, Version: rec.Version + 1, Updated: now}
		if err := putJSON(projects, p.Name, rec); err != nil {
			return err
		}
		versions := tx.Bucket(bucketVersions)
		if err := putJSON(versions, versionKey(p.Name, rec.Version), p); err != nil {
			return err
		}
		if old := rec.Version - s.cfg.MaxVersions; old > 0 {
			return versions.Delete([]byte(versionKey(p.Name, old)))
		}
		return nil
	})
	if err != nil {
		return Record{}, fmt.Errorf("store: put project %s: %w", p.Name, err)
	}
	return rec, nil
}

func versionKey(name string, v int) string { return fmt.Sprintf("%s/%08d", name, v) }

func (s *Bolt) MarkDeleting(name string, volumes bool) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProjects)
		var rec Record
		if err := getJSON(b, name, &rec); err != nil {
			return err
		}
		rec.Deleting, rec.Volumes = true, rec.Volumes || volumes
		return putJSON(b, name, rec)
	})
	if err != nil {
		return fmt.Errorf("store: mark %s deleting: %w", name, err)
	}
	return nil
}

func (s *Bolt) DeleteProject(name string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		var rec Record
		if err := getJSON(tx.Bucket(bucketProjects), name, &rec); err != nil {
			return err
		}
		if !rec.Deleting {
			return errs.E(errs.Conflict, "project %q was brought up again while it was being taken down", name)
		}
		if err := tx.Bucket(bucketProjects).Delete([]byte(name)); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketVersions, bucketSlots, bucketCounts, bucketQuarantine, bucketRollouts} {
			if err := deletePrefix(tx.Bucket(b), name+"/"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete project %s: %w", name, err)
	}
	return nil
}

func (s *Bolt) Project(name string) (Record, error) {
	var rec Record
	err := s.db.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketProjects), name, &rec) })
	return rec, err
}

func (s *Bolt) Projects() ([]Record, error) {
	var out []Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProjects).ForEach(func(_, v []byte) error {
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list projects: %w", err)
	}
	return out, nil
}

func (s *Bolt) History(project string) (map[reconcile.SlotKey]reconcile.History, error) {
	out := map[reconcile.SlotKey]reconcile.History{}
	prefix := []byte(project + "/")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSlots).Cursor()
		for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
			rest := strings.TrimPrefix(string(k), string(prefix))
			i := strings.LastIndexByte(rest, '/')
			slot, err := strconv.Atoi(rest[i+1:])
			if i < 0 || err != nil {
				continue
			}
			var h reconcile.History
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			out[reconcile.SlotKey{Service: rest[:i], Slot: slot}] = h
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read slots of %s: %w", project, err)
	}
	return out, nil
}

func (s *Bolt) PutHistory(project string, hs map[reconcile.SlotKey]reconcile.History) error {
	if len(hs) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSlots)
		for k, h := range hs {
			key := fmt.Sprintf("%s/%s/%d", project, k.Service, k.Slot)
			if h.Equal(reconcile.History{}) {
				if err := b.Delete([]byte(key)); err != nil {
					return err
				}
				continue
			}
			if err := putJSON(b, key, h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: write slots of %s: %w", project, err)
	}
	return nil
}

func (s *Bolt) Append(entries ...Entry) ([]Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	out := slices.Clone(entries)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJournal)
		var last uint64
		for i := range out {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			out[i].Seq, last = seq, seq
			v, err := json.Marshal(out[i])
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return trimJournal(b, last, uint64(s.cfg.MaxEntries))
	})
	if err != nil {
		return nil, fmt.Errorf("store: append journal: %w", err)
	}
	s.mu.Lock()
	close(s.appended)
	s.appended = make(chan struct{})
	s.mu.Unlock()
	return out, nil
}

// trimJournal drops the entries that fall out of retention. Sequence numbers
// are dense, so the cutoff is known without counting.
func trimJournal(b *bolt.Bucket, last, keep uint64) error {
	if last <= keep {
		return nil
	}
	cutoff := last - keep
	var old [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= cutoff; k, _ = c.Next() {
		old = append(old, k)
	}
	return deleteKeys(b, old)
}

// deleteKeys deletes after the walk: deleting under a moving cursor skips keys.
func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (s *Bolt) Journal(q Query) ([]Entry, error) {
	var out []Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJournal).Cursor()
		// Walk back from the newest so Limit costs only what it returns.
		for k, v := c.Last(); k != nil && binary.BigEndian.Uint64(k) > q.After; k, v = c.Prev() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if !q.Matches(e) {
				continue
			}
			out = append(out, e)
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read journal: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

func (s *Bolt) Appended() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appended
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func getJSON(b *bolt.Bucket, key string, v any) error {
	data := b.Get([]byte(key))
	if data == nil {
		return errs.E(errs.NotFound, "project %q not found", key)
	}
	return json.Unmarshal(data, v)
}

func deletePrefix(b *bolt.Bucket, prefix string) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, _ = c.Next() {
		keys = append(keys, k)
	}
	return deleteKeys(b, keys)
}
