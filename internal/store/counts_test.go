package store_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/scale"
	"github.com/tend-sh/tend/internal/store"
)

func TestCountsSurviveReopenAndGoWithTheProject(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tend.db")
	s, err := store.OpenBolt(store.BoltConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	mustPut(t, s, "p")
	if err := s.PutCount("p", "web", store.Count{Scale: scale.State{Replicas: 4}, Updated: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCount("p", "api", store.Count{Pinned: true, Replicas: 2, Updated: now}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "p") // a later `tend up` leaves the counts
	s.Close()
	if s, err = store.OpenBolt(store.BoltConfig{Path: path}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Counts("p")
	if err != nil || len(got) != 2 || got["web"].Scale.Replicas != 4 || !got["api"].Pinned || got["api"].Replicas != 2 {
		t.Fatalf("%v %+v", err, got)
	}
	if err := s.PutCount("p", "api", store.Count{}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDeleting("p", false); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProject("p"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Counts("p"); err != nil || len(got) != 0 {
		t.Fatalf("after down: %v %+v", err, got)
	}
}
