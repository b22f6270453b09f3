package supervisor

import (
	"fmt"
	"time"

	"github.com/tend-sh/tend/internal/store"
)

// maxBacklog bounds the journal entries held in memory while the store
// refuses writes (a full disk under --data): about 3 MB of entries, hours of
// a busy stack's healing. Beyond it the oldest go, and are counted.
const maxBacklog = 10000

// backlog is the journal the store could not take yet. The caller holds s.jmu.
type backlog struct {
	entries []store.Entry
	dropped int       // entries that did not fit, oldest first
	since   time.Time // the first failed write of this spell
	err     error     // the last write's error
}

// StoreStatus says whether the store takes writes, for `tend ps`, the API
// and the metrics.
type StoreStatus struct {
	Writable bool `json:"writable"`
	// Full: the last write failed for want of space on the data directory's disk.
	Full  bool      `json:"full,omitempty"`
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since,omitzero"` // the first failed write of this spell
	// HeldEntries are journal entries kept in memory, written once the store takes writes again.
	HeldEntries int `json:"held_entries"`
	// DroppedEntries did not fit in memory (more than 10,000 held): lost, counted in the entry
	// that closes the spell.
	DroppedEntries int `json:"dropped_entries,omitempty"`
}

// StoreStatus reports whether the journal's last write went through.
func (s *Supervisor) StoreStatus() StoreStatus {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	b := &s.backlog
	if b.err == nil {
		return StoreStatus{Writable: true}
	}
	return StoreStatus{Full: store.Full(b.err), Error: b.err.Error(), Since: b.since,
		HeldEntries: len(b.entries), DroppedEntries: b.dropped}
}

// journal records entries, after any the store refused earlier: in their
// order, with the times they happened. While the store refuses writes they
// are held in memory (bounded) and written by the next write that succeeds.
func (s *Supervisor) journal(entries ...store.Entry) {
	now := s.cfg.Clock.Now()
	for i := range entries {
		if entries[i].Time.IsZero() {
			entries[i].Time = now
		}
	}
	s.jmu.Lock()
	err := s.writeJournal(entries, now)
	held := len(s.backlog.entries)
	s.jmu.Unlock()
	if err != nil {
		s.cfg.Log.Error("journal write failed; holding the entries in memory until the store takes writes", "err", err,
			"held", held)
	}
	for _, e := range entries {
		attrs := []any{"project", e.Project, "action", e.Action, "reason", e.Reason}
		if e.Service != "" {
			attrs = append(attrs, "service", e.Service, "slot", e.Slot)
		}
		if e.Error != "" {
			attrs = append(attrs, "err", e.Error)
		}
		s.cfg.Log.Info(e.Message, attrs...)
	}
}

// flushJournal writes the held entries, if any; each pass tries, so they
// are written soon after space returns even when nothing else happens.
func (s *Supervisor) flushJournal() {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	if s.backlog.err != nil {
		_ = s.writeJournal(nil, s.cfg.Clock.Now())
	}
}

// writeJournal appends the backlog and entries, or holds them. The caller holds s.jmu.
func (s *Supervisor) writeJournal(entries []store.Entry, now time.Time) error {
	b := &s.backlog
	all := append(b.entries, entries...)
	if b.err != nil {
		all = append(all, s.resumed(now, len(all)))
	}
	if len(all) == 0 {
		return nil
	}
	if _, err := s.cfg.Store.Append(all...); err != nil {
		if b.err == nil {
			b.since = now
		} else {
			all = all[:len(all)-1] // the closing entry is made anew at the next try
		}
		b.err = err
		if over := len(all) - maxBacklog; over > 0 {
			all, b.dropped = all[over:], b.dropped+over
		}
		b.entries = all
		return err
	}
	*b = backlog{}
	return nil
}

// resumed is the entry that closes a spell of refused writes.
func (s *Supervisor) resumed(now time.Time, held int) store.Entry {
	b := &s.backlog
	msg := fmt.Sprintf("the store refused writes from %s (%v); %d journal entries held in memory are written now",
		b.since.Format(time.RFC3339), b.err, held)
	if b.dropped > 0 {
		msg += fmt.Sprintf("; %d older ones did not fit and are lost", b.dropped)
	}
	reason := "writable"
	if store.Full(b.err) {
		reason = "space-returned"
	}
	return store.Entry{Time: now, Action: "journal-resumed", Reason: reason, Message: msg}
}
