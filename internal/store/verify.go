package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tend-sh/tend/internal/errs"
)

// A store file is read in full when it is opened, so damage shows at start,
// with what it costs, and not as a read that fails for ever after (one
// unreadable journal entry would fail every `tend events`). bbolt keeps no
// checksum but on its two meta pages, so what is found is what breaks the
// file's structure or the records' encoding: a file shorter than its last
// commit (torn), a damaged meta page, a page that cannot be walked, a record
// that does not decode. A flipped byte that leaves a record well-formed is not.

// Damage says what is wrong with a store file and what cannot be read of it.
type Damage struct {
	Path     string
	Problems []string // what is wrong
	Lost     []string // what cannot be read: a recovery goes on without it
	Kept     string   // after a recovery: where the damaged file was moved
	Found    string   // what was found outside the file's tree, if anything
}

func (d *Damage) Error() string {
	lost := "nothing of its records"
	if len(d.Lost) > 0 {
		lost = strings.Join(d.Lost, "; ")
	}
	return fmt.Sprintf("store: %s is damaged (%s); unreadable: %s. `tend serve --recover-store` keeps what can be read and moves the damaged file aside",
		d.Path, strings.Join(d.Problems, "; "), lost)
}

// ErrorKind makes a damaged store invalid input: the daemon refuses it until told to recover.
func (d *Damage) ErrorKind() errs.Kind { return errs.Invalid }

// Summary is the damage in one line, for the journal entry of a recovery.
func (d *Damage) Summary() string {
	lost := "nothing"
	if len(d.Lost) > 0 {
		lost = strings.Join(d.Lost, "; ")
	}
	found := ""
	if d.Found != "" {
		found = "; " + d.Found
	}
	return fmt.Sprintf("damaged store %s (%s); lost: %s%s; the damaged file is kept as %s", d.Path, strings.Join(d.Problems, "; "), lost, found, d.Kept)
}

// record is one readable key and value of a bucket.
type record struct{ k, v []byte }

// contents is what could be read of a store file.
type contents struct {
	buckets map[string][]record
	seq     uint64 // the journal's last sequence number
	damage  Damage
	// journalWalked is set when the journal's tree was walked to its end.
	journalWalked bool
	keep          bool     // keep the journal's records, for a salvage
	seqs          []uint64 // the numbers of the journal entries read
}

func (c *contents) problem(format string, args ...any) {
	c.damage.Problems = append(c.damage.Problems, fmt.Sprintf(format, args...))
}

func (c *contents) lost(format string, args ...any) {
	c.damage.Lost = append(c.damage.Lost, fmt.Sprintf(format, args...))
}

// allBuckets are the buckets of a store, in the order they are read.
var allBuckets = [][]byte{bucketProjects, bucketVersions, bucketSlots, bucketCounts, bucketQuarantine, bucketRollouts, bucketJournal}

// read reads every record of the file at path that can be read. A file
// another process holds is an error; a damaged one is not: the damage is in
// the contents. maxEntries is the journal's retention, to tell trimmed
// entries from lost ones. Without keep, the journal's entries are checked
// and not kept: a whole file is not copied into memory at every start.
func read(path string, maxEntries int, keep bool) (*contents, error) {
	c := &contents{buckets: map[string][]record{}, damage: Damage{Path: path}, keep: keep}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	checkMetas(c, path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, errs.Wrap(errs.Unavailable, fmt.Errorf("store: open %s: %w", path, err))
	}
	if err != nil {
		c.problem("it cannot be opened: %v", err)
		c.lost("everything")
		return c, nil
	}
	defer db.Close()
	sound := checkTree(path) // pages.go: what bbolt may walk
	for _, p := range sound.problems {
		c.problem("%s", p)
	}
	if sound.rootBad != "" {
		if len(sound.problems) == 0 {
			c.problem("it cannot be read: %s", sound.rootBad)
		}
		for _, name := range allBuckets {
			if string(name) != string(bucketJournal) { // journalLosses counts the entries
				c.lost("all of %s", describeBucket(string(name)))
			}
		}
		scanAfterDamage(c, path, maxEntries)
		return c, nil
	}
	// A page past the end of a torn file faults when touched: let that be
	// a panic this goroutine recovers from, not the end of the process.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	tx, err := db.Begin(false)
	if err != nil {
		c.problem("it cannot be read: %v", err)
		c.lost("everything")
		return c, nil
	}
	defer tx.Rollback()
	if size := tx.Size(); size > info.Size() {
		c.problem("torn: the file has %d bytes, its last commit reaches %d", info.Size(), size)
	}
	for _, name := range allBuckets {
		if _, bad := sound.unsound[string(name)]; bad {
			if string(name) != string(bucketJournal) {
				c.lost("all of %s", describeBucket(string(name)))
			}
			continue
		}
		readBucket(c, tx, string(name))
	}
	scanAfterDamage(c, path, maxEntries)
	return c, nil
}

// scanAfterDamage looks for journal entries outside the tree of a damaged
// file, and counts what the journal lost.
func scanAfterDamage(c *contents, path string, maxEntries int) {
	if len(c.damage.Problems) > 0 {
		if n := scanJournal(c, path, maxEntries); n > 0 {
			c.damage.Found = fmt.Sprintf("%d journal entries found in pages of earlier commits", n)
		}
	}
	journalLosses(c, maxEntries)
	if len(c.seqs) == 0 && !c.journalWalked {
		c.lost("the journal (how many entries it held is not known)")
	}
}

// checkMetas checks both meta pages' checksums, which bbolt itself checks
// only to fall back on the other one, the commit before.
func checkMetas(c *contents, path string) {
	f, err := os.Open(path)
	if err != nil {
		return // bolt.Open says why
	}
	defer f.Close()
	buf := make([]byte, 16+64)
	pageSize := int64(os.Getpagesize())
	if _, err := f.ReadAt(buf, 0); err == nil {
		if ps := binary.LittleEndian.Uint32(buf[16+8:]); ps >= 512 && ps <= 1<<20 && ps&(ps-1) == 0 {
			pageSize = int64(ps)
		}
	}
	for i := range int64(2) {
		if n, _ := f.ReadAt(buf, i*pageSize); n < len(buf) || !metaValid(buf) {
			c.problem("meta page %d is damaged: the file reads as of the commit before (a write that was done may be lost)", i)
		}
	}
}

// metaValid checks a meta page: the page header (16 bytes), then magic,
// version, page size, flags, root bucket (16), freelist, high water mark
// and transaction id, and their FNV-64a checksum.
func metaValid(page []byte) bool {
	m := page[16:]
	const sumAt = 4*4 + 16 + 8 + 8 + 8
	if binary.LittleEndian.Uint32(m) != 0xED0CDAED || binary.LittleEndian.Uint32(m[4:]) != 2 {
		return false
	}
	h := fnv.New64a()
	h.Write(m[:sumAt])
	return h.Sum64() == binary.LittleEndian.Uint64(m[sumAt:])
}

// readBucket reads one bucket's records. The journal is walked from both
// ends, so damage in its middle costs only the entries there.
func readBucket(c *contents, tx *bolt.Tx, name string) {
	var b *bolt.Bucket
	if err := guard(func() { b = tx.Bucket([]byte(name)) }); err != nil || b == nil {
		c.problem("bucket %s cannot be found", name)
		if name != string(bucketJournal) { // journalLosses counts the entries
			c.lost("all of %s", describeBucket(name))
		}
		return
	}
	if name == string(bucketJournal) {
		readJournal(c, b)
		return
	}
	var last []byte
	err := guard(func() {
		cur := b.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			last = k
			if v == nil {
				c.problem("%s holds a bucket where a record belongs (%q)", name, k)
				continue
			}
			if err := checkRecord(name, k, v); err != nil {
				c.problem("%s: %q does not decode: %v", name, k, err)
				c.lost("%s", describe(name, k))
				continue
			}
			c.buckets[name] = append(c.buckets[name], record{clone(k), clone(v)})
		}
	})
	if err != nil {
		c.problem("%s cannot be walked past %q: %v", name, last, err)
		c.lost("%s after %q", describeBucket(name), last)
	}
}

// guard runs f, turning a panic (bbolt's on a page it cannot make sense
// of, or a fault) into an error.
func guard(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// checkRecord decodes a record as its bucket holds it.
func checkRecord(bucket string, k, v []byte) error {
	switch bucket {
	case string(bucketProjects):
		var rec Record
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		if rec.Project.Name != string(k) {
			return fmt.Errorf("it names project %q", rec.Project.Name)
		}
		return nil
	case string(bucketJournal):
		if len(k) != 8 {
			return fmt.Errorf("a key of %d bytes", len(k))
		}
		// Decoded in full: a flipped byte that leaves JSON but not a time
		// would fail every read of the journal after it.
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		if e.Seq != binary.BigEndian.Uint64(k) {
			return fmt.Errorf("it is numbered %d", e.Seq)
		}
		return nil
	}
	if !json.Valid(v) {
		return errors.New("not JSON")
	}
	return nil
}

// describe names a record for a person.
func describe(bucket string, k []byte) string {
	switch bucket {
	case string(bucketProjects):
		return fmt.Sprintf("the desired state of project %q", k)
	case string(bucketVersions):
		return fmt.Sprintf("desired-state version %q", k)
	case string(bucketSlots):
		return fmt.Sprintf("the restart memory of %q", k)
	case string(bucketCounts):
		return fmt.Sprintf("the chosen replica count of %q", k)
	case string(bucketQuarantine):
		return fmt.Sprintf("the quarantine state of %q", k)
	case string(bucketRollouts):
		return fmt.Sprintf("the rollout state of %q", k)
	}
	return fmt.Sprintf("%s %q", bucket, k)
}

func describeBucket(bucket string) string {
	switch bucket {
	case string(bucketProjects):
		return "the projects' desired state"
	case string(bucketVersions):
		return "the desired-state versions"
	case string(bucketSlots):
		return "the replicas' restart memory"
	case string(bucketCounts):
		return "the chosen replica counts"
	case string(bucketQuarantine):
		return "the quarantine states"
	case string(bucketRollouts):
		return "the rollout states"
	}
	return "the journal"
}
