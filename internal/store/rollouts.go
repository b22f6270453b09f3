package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/tend-sh/tend/internal/rollout"
	"github.com/tend-sh/tend/internal/spec"
)

// bucketRollouts holds project/service -> rollout.State: a restarted tend
// continues a rollout from the step it reached.
var bucketRollouts = []byte("rollouts")

func (s *Bolt) Rollouts(project string) (map[string]rollout.State, error) {
	out := map[string]rollout.State{}
	prefix := project + "/"
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRollouts)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			var st rollout.State
			if err := json.Unmarshal(v, &st); err != nil {
				return err
			}
			out[strings.TrimPrefix(string(k), prefix)] = st
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read rollouts of %s: %w", project, err)
	}
	return out, nil
}

func (s *Bolt) PutRollout(project, service string, st rollout.State) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRollouts)
		if err != nil {
			return err
		}
		key := project + "/" + service
		if st.Target == "" {
			return b.Delete([]byte(key))
		}
		return putJSON(b, key, st)
	})
	if err != nil {
		return fmt.Errorf("store: put rollout of %s/%s: %w", project, service, err)
	}
	return nil
}

// PastVersions returns the kept versions of a project's desired state,
// newest first (the current one included).
func (s *Bolt) PastVersions(name string) ([]Record, error) {
	var out []Record
	prefix := name + "/"
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketVersions).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			n, err := strconv.Atoi(strings.TrimPrefix(string(k), prefix))
			if err != nil {
				continue
			}
			var p spec.Project
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			out = append(out, Record{Project: p, Version: n})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read versions of %s: %w", name, err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
