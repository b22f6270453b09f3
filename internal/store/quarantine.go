package store

import (
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/tend-sh/tend/internal/quarantine"
)

// bucketQuarantine holds project/service -> quarantine.State: a quarantine
// survives a restart of tend.
var bucketQuarantine = []byte("quarantine")

func (s *Bolt) Quarantine(project string) (map[string]quarantine.State, error) {
	out := map[string]quarantine.State{}
	prefix := project + "/"
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketQuarantine).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			var st quarantine.State
			if err := json.Unmarshal(v, &st); err != nil {
				return err
			}
			out[strings.TrimPrefix(string(k), prefix)] = st
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read quarantine of %s: %w", project, err)
	}
	return out, nil
}

func (s *Bolt) PutQuarantine(project string, states map[string]quarantine.State) error {
	if len(states) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuarantine)
		for svc, st := range states {
			key := project + "/" + svc
			if st == (quarantine.State{}) {
				if err := b.Delete([]byte(key)); err != nil {
					return err
				}
				continue
			}
			if err := putJSON(b, key, st); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: write quarantine of %s: %w", project, err)
	}
	return nil
}
