package store

import (
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Versions returns the numbers of the desired-state versions kept of a
// project, oldest first: what only the versions bucket knows.
func (s *Bolt) Versions(t *testing.T, name string) []int {
	t.Helper()
	var out []int
	prefix := name + "/"
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketVersions).Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, _ = c.Next() {
			v, err := strconv.Atoi(strings.TrimPrefix(string(k), prefix))
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read versions of %s: %v", name, err)
	}
	return out
}
