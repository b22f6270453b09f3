package supervisor_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// fullStore is a store on a disk that can fill up: while full, the writes
// that need new pages (journal entries, slot memory) fail as bbolt's do.
type fullStore struct {
	store.Store
	full atomic.Bool
}

func (f *fullStore) err() error {
	if f.full.Load() {
		return fmt.Errorf("file resize error: %s", syscall.ENOSPC) // bbolt's wording, errno lost
	}
	return nil
}

func (f *fullStore) Append(entries ...store.Entry) ([]store.Entry, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.Append(entries...)
}

func (f *fullStore) PutHistory(project string, h map[reconcile.SlotKey]reconcile.History) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.PutHistory(project, h)
}

// Issue 20: a full disk under --data. Healing goes on; the journal's entries
// of that time are held in memory, said in the store's status, and written,
// with their own times and in order, once space returns.
func TestFullDiskHoldsTheJournal(t *testing.T) {
	h := newHarness(t)
	fs := &fullStore{Store: h.st}
	h.sup = supervisor.New(supervisor.Config{Runtime: h.rt, Store: fs, Clock: h.clk})
	h.start()
	h.up(twoServices())
	h.waitEntry(match{"create", "new", "web", 2, false}, 1)
	id := h.waitSeen("web", 2)
	if st := h.sup.StoreStatus(); !st.Writable || st.HeldEntries != 0 {
		t.Fatalf("store status before the disk fills: %+v", st)
	}

	fs.full.Store(true)
	if err := h.rt.Exit(id, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web/2 restarted while the disk is full", func() bool {
		c, ok := h.rt.Container(id)
		return ok && c.State == runtime.Running && len(h.calls("Start")) == 4
	})
	var st supervisor.StoreStatus
	// An action is journaled when it returns, a moment after the engine's
	// Start: wait until the held entries stop growing.
	eventually(t, "the store said full, with the restart's entry held", func() bool {
		st = h.sup.StoreStatus()
		if st.Writable || !st.Full || st.HeldEntries < 1 {
			return false
		}
		time.Sleep(100 * time.Millisecond)
		return h.sup.StoreStatus().HeldEntries == st.HeldEntries
	})
	if len(h.entries(match{"restart", "exited", "web", 2, false})) != 0 {
		t.Fatal("the restart's entry reached a full store")
	}
	held := st.HeldEntries

	fs.full.Store(false)
	h.clk.Advance(11 * 1e9) // the next resync pass writes them, with nothing else happening
	restart := h.waitEntry(match{"restart", "exited", "web", 2, false}, 1)
	resumed := h.waitEntry(match{"journal-resumed", "space-returned", "", 0, false}, 1)
	if !restart.Time.Before(resumed.Time) || restart.Seq > resumed.Seq {
		t.Errorf("the held entry (seq %d, %s) is not before the one closing the spell (seq %d, %s)",
			restart.Seq, restart.Time, resumed.Seq, resumed.Time)
	}
	if !strings.Contains(resumed.Message, fmt.Sprintf("%d journal entries held in memory are written now", held)) {
		t.Errorf("closing entry %q, want it to count the %d held entries", resumed.Message, held)
	}
	if st := h.sup.StoreStatus(); !st.Writable || st.HeldEntries != 0 {
		t.Errorf("store status after space returned: %+v", st)
	}
}
