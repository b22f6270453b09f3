package store_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tend-sh/tend/internal/store"
)

// The journal at scale (issue 20): appends with the journal at its
// retention (every append also trims), one entry per commit and 100 per
// commit (a pass that acts on many replicas journals them together), and
// the open of a full store, which reads every record (verify.go).
// Figures in bench/README.md.
//
//	go test -run XXX -bench Journal -benchtime 2000x ./internal/store

func fullStore(b *testing.B, entries int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "tend.db")
	s, err := store.OpenBolt(store.BoltConfig{Path: path, MaxEntries: entries})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]store.Entry, 1000)
	for i := range batch {
		batch[i] = scaleEntry(i)
	}
	for range entries / len(batch) {
		if _, err := s.Append(batch...); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// scaleEntry is a journal entry of the size a replacement writes.
func scaleEntry(i int) store.Entry {
	return store.Entry{Time: t0, Project: "scale03", Service: fmt.Sprintf("svc%03d", i%500), Slot: 1 + i%4,
		Container: "3f2a9c1b7d4e", Action: "replace", Reason: "liveness",
		Message: "liveness probe failed 3 times: GET http://10.0.3.17:8080/healthz: 503 Service Unavailable"}
}

func BenchmarkJournalAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			path := fullStore(b, store.DefaultMaxEntries)
			s, err := store.OpenBolt(store.BoltConfig{Path: path})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			es := make([]store.Entry, batch)
			for i := range es {
				es[i] = scaleEntry(i)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Append(es...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkJournalOpenFull opens a store whose journal holds its 100,000
// entries: the full read at open is what a start of tend costs.
func BenchmarkJournalOpenFull(b *testing.B) {
	path := fullStore(b, store.DefaultMaxEntries)
	b.ResetTimer()
	for b.Loop() {
		s, err := store.OpenBolt(store.BoltConfig{Path: path})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
