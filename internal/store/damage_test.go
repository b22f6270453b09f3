package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/store"
)

// filled writes a store with two projects, slot memory and n journal
// entries (each message names its number, so a test can find it in the
// file), closes it and returns its path.
func filled(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tend.db")
	s, err := store.OpenBolt(store.BoltConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "alpha")
	mustPut(t, s, "bravo")
	if err := s.PutHistory("alpha", map[reconcile.SlotKey]reconcile.History{{Service: "web", Slot: 1}: {Container: "abc", Restarts: 2}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		mustAppend(t, s, store.Entry{Project: "alpha", Service: "web", Action: "restart", Message: fmt.Sprintf("entry-%06d padded %s", i, strings.Repeat("x", 80)), Time: t0})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// refused opens path without Recover, expects a *Damage naming want among
// its problems, and checks the file was left exactly as it was.
func refused(t *testing.T, path, want string) *store.Damage {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.OpenBolt(store.BoltConfig{Path: path})
	if err == nil {
		s.Close()
		t.Fatalf("a damaged store opened without --recover-store")
	}
	var d *store.Damage
	if !errors.As(err, &d) {
		t.Fatalf("open of a damaged store: %T %v, want a *store.Damage", err, err)
	}
	if errs.KindOf(err) != errs.Invalid {
		t.Errorf("kind %s, want invalid", errs.KindOf(err))
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--recover-store") {
		t.Errorf("error %q does not say %q and how to recover", err, want)
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("a refused open changed the file (err %v)", err)
	}
	return d
}

// recovered opens path with Recover and checks the store then reads and
// writes, its journal numbering continuing after lastSeq.
func recovered(t *testing.T, path string, lastSeq uint64) (*store.Bolt, *store.Damage) {
	t.Helper()
	s, err := store.OpenBolt(store.BoltConfig{Path: path, Recover: true})
	if err != nil {
		t.Fatalf("recovering open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	d := s.Recovered()
	if d == nil {
		t.Fatal("a recovering open of a damaged store reports no damage")
	}
	if _, err := os.Stat(d.Kept); err != nil {
		t.Errorf("the damaged file is not kept: %v", err)
	}
	if _, err := s.Projects(); err != nil {
		t.Errorf("projects after recovery: %v", err)
	}
	if _, err := s.Journal(store.Query{}); err != nil {
		t.Errorf("journal after recovery: %v", err)
	}
	got := mustAppend(t, s, store.Entry{Project: "alpha", Action: "up"})
	if got[0].Seq <= lastSeq {
		t.Errorf("first entry after recovery numbered %d, want more than %d: the journal continues", got[0].Seq, lastSeq)
	}
	return s, d
}

func TestATruncatedStoreIsRefusedThenRecoveredWithWhatReads(t *testing.T) {
	path := filled(t, 400)
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	d := refused(t, path, "torn")
	if len(d.Lost) == 0 {
		t.Errorf("half a file lost, and the damage lists no loss: %+v", d)
	}
	// What a torn file lost of the journal's end is not known: the
	// numbering continues after the newest entry kept.
	kept := keptSeqs(t, path)
	if len(kept) < 100 {
		t.Errorf("kept %d of 400 journal entries: the pages of earlier commits hold more", len(kept))
	}
	s, d := recovered(t, path, kept[len(kept)-1])
	j, _ := s.Journal(store.Query{})
	t.Logf("kept %d of 400 entries; %s", len(j)-1, d.Summary())
	if len(j) < 401 && !strings.Contains(d.Summary(), "journal entries") {
		t.Errorf("entries are gone and the summary does not say so: %s", d.Summary())
	}
}

// keptSeqs is what a recovery of a copy of path keeps of the journal.
func keptSeqs(t *testing.T, path string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := store.OpenBolt(store.BoltConfig{Path: cp, Recover: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j, err := s.Journal(store.Query{})
	if err != nil || len(j) == 0 {
		t.Fatalf("journal of the recovered copy: %d entries, %v", len(j), err)
	}
	return seqsOf(j)
}

func TestARecordThatDoesNotDecodeIsNamedAndOnlyItIsLost(t *testing.T) {
	path := filled(t, 50)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("entry-000017")) {
		t.Fatal("entry 17 not found in the file")
	}
	// A control character: no longer JSON. Every copy: pages of earlier
	// commits, free now, hold older ones.
	b = bytes.ReplaceAll(b, []byte("entry-000017"), []byte("\x00ntry-000017"))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d := refused(t, path, "journal entry")
	if want := "1 journal entries (numbers 17-17)"; !strings.Contains(strings.Join(d.Lost, ";"), want) {
		t.Errorf("lost %q, want it to say %q", d.Lost, want)
	}
	s, _ := recovered(t, path, 50)
	j, _ := s.Journal(store.Query{})
	if len(j) != 50 { // 49 kept and the one appended
		t.Errorf("journal after recovery has %d entries, want 50", len(j))
	}
	for _, e := range j {
		if e.Seq == 17 {
			t.Errorf("the damaged entry came back: %+v", e)
		}
	}
	if rec, err := s.Project("bravo"); err != nil || rec.Version != 1 {
		t.Errorf("project bravo after recovery: %+v %v", rec, err)
	}
}

func TestADamagedProjectRecordIsNamed(t *testing.T) {
	path := filled(t, 5)
	b, _ := os.ReadFile(path)
	// Every copy: pages of earlier commits, free now, hold older ones.
	rec := []byte(`{"project":{"name":"bravo"`)
	if !bytes.Contains(b, rec) {
		t.Fatal("bravo's record not found in the file")
	}
	b = bytes.ReplaceAll(b, rec, append([]byte{0}, rec[1:]...))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d := refused(t, path, "does not decode")
	if !strings.Contains(strings.Join(d.Lost, ";"), `the desired state of project "bravo"`) {
		t.Errorf("lost %q, want bravo's desired state named", d.Lost)
	}
	s, _ := recovered(t, path, 5)
	if _, err := s.Project("alpha"); err != nil {
		t.Errorf("alpha after recovery: %v", err)
	}
	if _, err := s.Project("bravo"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("bravo after recovery: %v, want not found", err)
	}
}

func TestADamagedMetaPageIsRefused(t *testing.T) {
	path := filled(t, 5)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The transaction id of meta page 0: bbolt would read the file as of
	// meta page 1's commit, without a word.
	if _, err := f.WriteAt([]byte{0xff}, 16+4*4+16+8+8); err != nil {
		t.Fatal(err)
	}
	f.Close()
	refused(t, path, "meta page 0 is damaged")
	recovered(t, path, 0)
}

func TestAFileThatIsNoStoreIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tend.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	d := refused(t, path, "cannot be opened")
	if len(d.Lost) != 1 || d.Lost[0] != "everything" {
		t.Errorf("lost %q, want everything", d.Lost)
	}
	s, _ := recovered(t, path, 0)
	if ps, _ := s.Projects(); len(ps) != 0 {
		t.Errorf("projects from nothing: %+v", ps)
	}
}

// TestRandomDamageIsRefusedOrHarmlessNeverACrash flips random bytes (and
// cuts some files short): an open either succeeds on a store that reads, or
// refuses with a Damage and, told to recover, opens one that reads.
func TestRandomDamageIsRefusedOrHarmlessNeverACrash(t *testing.T) {
	clean := filled(t, 300)
	orig, err := os.ReadFile(clean)
	if err != nil {
		t.Fatal(err)
	}
	trials := 200
	if testing.Short() {
		trials = 40
	}
	var refusedN, harmless int
	for trial := range trials {
		rng := rand.New(rand.NewPCG(uint64(trial), 7))
		b := bytes.Clone(orig)
		for range 1 + rng.IntN(8) {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		if trial%5 == 0 {
			b = b[:rng.IntN(len(b))]
		}
		path := filepath.Join(t.TempDir(), "tend.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := store.OpenBolt(store.BoltConfig{Path: path})
		if err == nil {
			harmless++
			if _, err := s.Projects(); err != nil {
				t.Errorf("trial %d: opened as whole, then projects fail: %v", trial, err)
			}
			if _, err := s.Journal(store.Query{}); err != nil {
				t.Errorf("trial %d: opened as whole, then the journal fails: %v", trial, err)
			}
			s.Close()
			continue
		}
		var d *store.Damage
		if !errors.As(err, &d) {
			t.Errorf("trial %d: %v, want a *store.Damage", trial, err)
			continue
		}
		refusedN++
		s, err = store.OpenBolt(store.BoltConfig{Path: path, Recover: true})
		if err != nil {
			t.Errorf("trial %d: recovering open: %v", trial, err)
			continue
		}
		if _, err := s.Journal(store.Query{}); err != nil {
			t.Errorf("trial %d: journal after recovery: %v", trial, err)
		}
		if _, err := s.Append(store.Entry{Action: "up"}); err != nil {
			t.Errorf("trial %d: append after recovery: %v", trial, err)
		}
		s.Close()
	}
	t.Logf("%d trials: %d refused and recovered, %d harmless (bytes bbolt does not read)", trials, refusedN, harmless)
}

// TestAPageOffsetOutOfBoundsIsRefusedBeforeBboltWalksIt: bbolt follows a
// page's element offsets through unsafe pointers; an offset that reaches
// past its page is found first, in plain Go, and the journal's tree is
// not walked by bbolt at all; a recovery keeps the entries of the other
// pages.
func TestAPageOffsetOutOfBoundsIsRefusedBeforeBboltWalksIt(t *testing.T) {
	path := filled(t, 200)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := os.Getpagesize()
	for from := 0; ; {
		i := bytes.Index(b[from:], []byte("entry-000117"))
		if i < 0 {
			break
		}
		page := (from + i) / ps * ps
		binary.LittleEndian.PutUint32(b[page+16+4:], 0xFFFFFF00) // element 0's pos: 4 GiB away
		from = page + ps
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, path, "bucket journal cannot be walked: leaf element 0 reaches past its page")
	s, _ := recovered(t, path, 200)
	j, _ := s.Journal(store.Query{})
	if len(j) < 150 {
		t.Errorf("journal after recovery has %d entries, want the other pages' (150 or more)", len(j))
	}
}
