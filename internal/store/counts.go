package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tend-sh/tend/internal/scale"
	"github.com/tend-sh/tend/internal/spec"
)

// bucketCounts holds the replica counts chosen apart from the spec:
// project/service -> Count. They are not part of a project's versions, so a
// `tend up` of the same file leaves them, and a restarted tend keeps them.
var bucketCounts = []byte("counts")

// Count is the replica count chosen for a service by the autoscaler or by
// `tend scale`.
type Count struct {
	// Pinned is a count set by `tend scale SERVICE=N`: it holds (the
	// autoscaler leaves the service alone) until `tend scale SERVICE --auto`.
	Pinned bool `json:"pinned,omitempty"`
	// Replicas is the pinned count; without a pin, Scale.Replicas is the count.
	Replicas int `json:"replicas"`
	// FileReplicas is deploy.replicas when the pin was set: a service tend
	// does not autoscale follows its file again once the file says otherwise.
	FileReplicas int         `json:"file_replicas,omitempty"`
	Scale        scale.State `json:"scale"` // the autoscaler's memory
	Updated      time.Time   `json:"updated"`
}

// Replicas is the count svc runs at, given its chosen count n (ok: it has
// one): a pin, else the autoscaler's count, else the file's.
func Replicas(svc *spec.Service, n Count, ok bool) int {
	switch {
	case ok && n.Pinned && (svc.Tend.Autoscale != nil || n.FileReplicas == svc.Replicas):
		return n.Replicas
	case svc.Tend.Autoscale != nil && ok:
		return n.Scale.Replicas
	case svc.Tend.Autoscale != nil:
		return svc.Tend.Autoscale.Min
	}
	return svc.Replicas
}

// Counts returns the chosen counts of a project's services, by service.
func (s *Bolt) Counts(project string) (map[string]Count, error) {
	out := map[string]Count{}
	prefix := project + "/"
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCounts)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			var n Count
			if err := json.Unmarshal(v, &n); err != nil {
				return err
			}
			out[strings.TrimPrefix(string(k), prefix)] = n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read counts of %s: %w", project, err)
	}
	return out, nil
}

// PutCount stores a service's chosen count; one with a zero Updated deletes it.
func (s *Bolt) PutCount(project, service string, n Count) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketCounts)
		if err != nil {
			return err
		}
		key := project + "/" + service
		if n.Updated.IsZero() {
			return b.Delete([]byte(key))
		}
		return putJSON(b, key, n)
	})
	if err != nil {
		return fmt.Errorf("store: put count of %s/%s: %w", project, service, err)
	}
	return nil
}
