package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tend-sh/tend/internal/errs"
)

// examine reads the file at cfg.Path, when there is one, and recovers it
// if it is damaged and cfg.Recover is set: the damage found is returned, as
// the error without cfg.Recover.
func examine(cfg BoltConfig) (*Damage, error) {
	if fi, err := os.Stat(cfg.Path); err != nil || fi.Size() == 0 {
		return nil, nil // a new store
	}
	c, err := read(cfg.Path, cfg.MaxEntries, false)
	if err != nil || len(c.damage.Problems) == 0 {
		return nil, err
	}
	if !cfg.Recover {
		return nil, &c.damage
	}
	if c, err = read(cfg.Path, cfg.MaxEntries, true); err != nil { // now keeping what reads
		return nil, err
	}
	return recoverFile(cfg, c)
}

// recoverFile salvages c, or refuses to without cfg.Recover.
func recoverFile(cfg BoltConfig, c *contents) (*Damage, error) {
	if !cfg.Recover {
		return nil, &c.damage
	}
	if err := salvage(cfg.Path, c); err != nil {
		return nil, fmt.Errorf("store: recover %s: %w", cfg.Path, err)
	}
	return &c.damage, nil
}

// recoverUnwritable recovers (or refuses to) a file whose records read but
// that cannot be opened for writing.
func recoverUnwritable(cfg BoltConfig, fault *pageFault) (*Damage, error) {
	c, err := read(cfg.Path, cfg.MaxEntries, cfg.Recover)
	if err != nil {
		return nil, err
	}
	c.problem("it cannot be opened for writing: %v", fault.err)
	return recoverFile(cfg, c)
}

// pageFault is a panic of bbolt (or a fault on its mapped file) while
// opening the store for writing.
type pageFault struct{ err error }

func (f *pageFault) Error() string { return f.err.Error() }

// openWritable opens the store for writing, making its buckets.
func openWritable(path string) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	perr := guard(func() {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
		if err != nil {
			err = errs.Wrap(errs.Unavailable, fmt.Errorf("store: open %s: %w", path, err))
			return
		}
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			db.Close()
			err = fmt.Errorf("store: init %s: %w", path, err)
		}
	})
	if perr != nil {
		if db != nil {
			_ = guard(func() { db.Close() })
		}
		return nil, &pageFault{perr}
	}
	return db, err
}

// readJournal reads the journal's entries, from the oldest on and, when a
// damaged page stops that walk, from the newest back, and names the entries
// that could not be read. Sequence numbers are dense and the journal keeps
// its newest maxEntries, so what is missing is known by number.
func readJournal(c *contents, b *bolt.Bucket) {
	name := string(bucketJournal)
	_ = guard(func() { c.seq = b.Sequence() })
	take := func(k, v []byte) {
		if err := checkRecord(name, k, v); err != nil {
			c.problem("journal entry %x does not decode: %v", k, err)
			return
		}
		c.seqs = append(c.seqs, binary.BigEndian.Uint64(k))
		if c.keep {
			c.buckets[name] = append(c.buckets[name], record{clone(k), clone(v)})
		}
	}
	forward := guard(func() {
		cur := b.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			take(k, v)
		}
	})
	c.journalWalked = forward == nil
	if forward == nil {
		return
	}
	c.problem("the journal cannot be walked to its end: %v", forward)
	seen := map[uint64]bool{}
	for _, seq := range c.seqs {
		seen[seq] = true
	}
	back := guard(func() {
		cur := b.Cursor()
		for k, v := cur.Last(); k != nil; k, v = cur.Prev() {
			if len(k) == 8 && seen[binary.BigEndian.Uint64(k)] {
				break
			}
			take(k, v)
		}
	})
	if back != nil {
		c.problem("nor walked back from its end: %v", back)
	}
}

// journalLosses names the journal entries that could not be read.
func journalLosses(c *contents, maxEntries int) {
	slices.Sort(c.seqs)
	c.seqs = slices.Compact(c.seqs)
	slices.SortFunc(c.buckets[string(bucketJournal)], func(a, b record) int { return bytes.Compare(a.k, b.k) })
	seqs := c.seqs
	if len(seqs) > 0 {
		c.seq = max(c.seq, seqs[len(seqs)-1])
	}
	first := uint64(1)
	if c.seq > uint64(maxEntries) {
		first = c.seq - uint64(maxEntries) + 1
	}
	// Entries before the oldest one read may have been trimmed under another
	// retention; they count as lost only when the walk from the oldest failed.
	if c.journalWalked && len(seqs) > 0 {
		first = max(first, seqs[0])
	}
	var missing, ranges uint64
	var words []string
	gap := func(from, to uint64) { // from..to are missing
		if from > to {
			return
		}
		missing += to - from + 1
		ranges++
		if ranges <= 5 {
			words = append(words, fmt.Sprintf("%d-%d", from, to))
		}
	}
	next := first
	for _, seq := range seqs {
		if seq < next {
			continue
		}
		gap(next, seq-1)
		next = seq + 1
	}
	gap(next, c.seq)
	if missing > 0 {
		if ranges > 5 {
			words = append(words, fmt.Sprintf("and %d more ranges", ranges-5))
		}
		c.problem("journal entries are missing")
		c.lost("%d journal entries (numbers %s)", missing, joinComma(words))
	}
}

func joinComma(words []string) string {
	var b bytes.Buffer
	for i, w := range words {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(w)
	}
	return b.String()
}

// salvage writes what c holds of the store at path into a new file, moves
// the damaged file aside (its name goes into c's Damage) and puts the new
// one in its place. The journal's numbering continues where it was.
func salvage(path string, c *contents) error {
	tmp := path + ".salvage"
	_ = os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			b, err := tx.CreateBucket(name)
			if err != nil {
				return err
			}
			for _, r := range c.buckets[string(name)] {
				if err := b.Put(r.k, r.v); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketJournal).SetSequence(c.seq)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	aside := path + ".damaged"
	for i := 1; ; i++ {
		if _, err := os.Lstat(aside); os.IsNotExist(err) {
			break
		}
		aside = fmt.Sprintf("%s.damaged-%d", path, i)
	}
	if err := os.Rename(path, aside); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	c.damage.Kept = aside
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
