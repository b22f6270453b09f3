// Package nodes is the pure part of tend's cluster: what a node is, and the
// judge that tells a node ready or down from the heartbeats one manager saw.
// It reads no clock: every decision takes `now`, and every time it compares
// was read on the judging manager's own clock, so no two hosts' clocks are
// ever compared (DESIGN.md, "Cluster").
package nodes

import (
	"slices"
	"time"
)

// Role is what a node does in the cluster.
type Role string

const (
	Manager Role = "manager" // holds a member of etcd and can lead
	Worker  Role = "worker"  // runs replicas only
)

// State is a node's state as `tend node ls` shows it.
type State string

const (
	Ready    State = "ready"
	Down     State = "down"
	Cordoned State = "cordoned" // ready, takes no new replicas
	Draining State = "draining" // ready, its replicas move to other nodes
)

// Mode is what a person (tend node cordon, drain) set on a node.
type Mode string

const (
	Active     Mode = ""
	ModeCordon Mode = "cordoned"
	ModeDrain  Mode = "draining"
)

// Node is a host as it joined.
type Node struct {
	Name    string    `json:"name"`
	Address string    `json:"address"` // the --advertise address other hosts reach it on
	Role    Role      `json:"role"`
	Joined  time.Time `json:"joined"`
	Mode    Mode      `json:"mode,omitempty"`
	// Pressure: tend drained it under pressure (Pressure), and undrains it
	// when the pressure is gone; a mode a person set stays until they change it.
	Pressure string `json:"pressure,omitempty"`
}

// Shown is the state `node ls` shows for a node the leader judged st:
// a ready node that is cordoned or draining says so.
func (n Node) Shown(st State) State {
	if st == Ready && n.Mode != Active {
		return State(n.Mode)
	}
	return st
}

// Status is a node with what the leader last judged of it.
type Status struct {
	Node
	State  State     `json:"state"`
	Since  time.Time `json:"since"` // when the leader judged it so (the leader's clock)
	Leader bool      `json:"leader"`
}

// Judge tells a node down once no heartbeat of it has arrived for TTL.
// A judge that starts (a new leader) gives every node a whole TTL first:
// it has not seen them yet, which is no sign that they are gone.
type Judge struct {
	TTL   time.Duration
	start time.Time
	seen  map[string]beat
}

type beat struct {
	n  uint64    // the heartbeat's own counter: a repeat of one already seen is no sign of life
	at time.Time // when this judge saw it change
}

// NewJudge returns a judge that starts at now.
func NewJudge(ttl time.Duration, now time.Time) *Judge {
	return &Judge{TTL: ttl, start: now, seen: map[string]beat{}}
}

// Beat records that node's heartbeat counter read n at now.
func (j *Judge) Beat(node string, n uint64, now time.Time) {
	if b, ok := j.seen[node]; ok && b.n == n {
		return
	}
	j.seen[node] = beat{n: n, at: now}
}

// Forget drops a node that left the cluster.
func (j *Judge) Forget(node string) { delete(j.seen, node) }

// State is node's state at now.
func (j *Judge) State(node string, now time.Time) State {
	last := j.start
	if b, ok := j.seen[node]; ok && b.at.After(last) {
		last = b.at
	}
	if now.Sub(last) >= j.TTL {
		return Down
	}
	return Ready
}

// Sorted returns the statuses by name, managers first.
func Sorted(all []Status) []Status {
	slices.SortFunc(all, func(a, b Status) int {
		if a.Role != b.Role {
			if a.Role == Manager {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return all
}
