package store

import (
	"errors"
	"strings"
	"syscall"
	"time"

	"github.com/tend-sh/tend/internal/quarantine"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/rollout"
	"github.com/tend-sh/tend/internal/spec"
)

// Entry is one journal record: what tend did to which replica, and why.
type Entry struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Project   string    `json:"project"`
	Service   string    `json:"service,omitempty"`
	Slot      int       `json:"slot,omitempty"`
	Container string    `json:"container,omitempty"`
	Action    string    `json:"action"`
	Reason    string    `json:"reason,omitempty"`
	Message   string    `json:"message,omitempty"`
	Error     string    `json:"error,omitempty"` // set when the action failed
}

// Record is a project's desired state as stored.
type Record struct {
	Project  spec.Project `json:"project"`
	Version  int          `json:"version"`
	Updated  time.Time    `json:"updated"`
	Deleting bool         `json:"deleting,omitempty"` // `tend down` began; finish it even after a restart
	Volumes  bool         `json:"volumes,omitempty"`  // the down also removes volumes
}

// Query selects journal entries.
type Query struct {
	Project string // empty: every project
	Service string // empty: every service
	Action  string // empty: every action
	After   uint64 // only entries with a larger Seq
	Limit   int    // the newest Limit matches; 0: all
}

// Matches reports whether e passes q's filters (all but After and Limit).
func (q Query) Matches(e Entry) bool {
	return (q.Project == "" || e.Project == q.Project) &&
		(q.Service == "" || e.Service == q.Service) &&
		(q.Action == "" || e.Action == q.Action)
}

// Store is tend's durable memory.
type Store interface {
	// PutProject stores a new version of a project's desired state.
	PutProject(p spec.Project, now time.Time) (Record, error)
	// MarkDeleting records that the project is being taken down.
	MarkDeleting(name string, volumes bool) error
	// DeleteProject forgets a project marked deleting, its versions and its
	// slots' memory; a project brought up again meanwhile is a Conflict. The journal stays.
	DeleteProject(name string) error
	Project(name string) (Record, error)
	Projects() ([]Record, error)

	History(project string) (map[reconcile.SlotKey]reconcile.History, error)
	// PutHistory stores the given slots' memory; a zero History deletes the slot's.
	PutHistory(project string, h map[reconcile.SlotKey]reconcile.History) error

	// Counts and PutCount keep the replica counts chosen apart from the spec (counts.go).
	Counts(project string) (map[string]Count, error)
	PutCount(project, service string, n Count) error
	// Quarantine is the quarantine state of the project's services that have one, by service.
	Quarantine(project string) (map[string]quarantine.State, error)
	// PutQuarantine stores the given services' quarantine state; a zero State deletes it.
	PutQuarantine(project string, states map[string]quarantine.State) error

	// Rollouts is the rollout state of the project's services that have one,
	// by service; PutRollout stores one, a zero State deletes it (rollouts.go).
	Rollouts(project string) (map[string]rollout.State, error)
	PutRollout(project, service string, st rollout.State) error
	// PastVersions are the kept versions of the project's desired state, newest first.
	PastVersions(name string) ([]Record, error)

	// Append adds entries to the journal, numbering them, and returns them numbered.
	Append(entries ...Entry) ([]Entry, error)
	Journal(q Query) ([]Entry, error)
	// Appended returns a channel that is closed at the next Append.
	Appended() <-chan struct{}

	Close() error
}

// Full tells an error of a write that failed for want of space on the disk.
// bbolt words some of its errors with %s, losing the errno: its text tells.
func Full(err error) bool {
	return err != nil && (errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left on device"))
}
