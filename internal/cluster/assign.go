package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tend-sh/tend/internal/nodes"
	"github.com/tend-sh/tend/internal/place"
	"github.com/tend-sh/tend/internal/reconcile"
)

// Assignments: the leader writes /tend/assign/<project>/<service>/<slot> =
// node; every node watches them and runs the slots assigned to it.

const prefixAssign = "/tend/assign/"

// placeEvery is how often the leader places when no node changed state:
// often enough that a new project's replicas start at once.
const placeEvery = 500 * time.Millisecond

func keyAssign(s place.Slot) string {
	return fmt.Sprintf("%s%s/%s/%d", prefixAssign, s.Project, s.Service, s.Slot)
}

func parseAssign(key string) (place.Slot, bool) {
	parts := strings.Split(strings.TrimPrefix(key, prefixAssign), "/")
	if len(parts) != 3 {
		return place.Slot{}, false
	}
	n, err := strconv.Atoi(parts[2])
	return place.Slot{Project: parts[0], Service: parts[1], Slot: n}, err == nil
}

// loadAssignments reads every assignment and returns the revision read at.
func (m *Member) loadAssignments(ctx context.Context) (map[place.Slot]string, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := m.cli.Get(ctx, prefixAssign, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("etcd: read assignments: %w", err)
	}
	out := map[place.Slot]string{}
	for _, kv := range resp.Kvs {
		if s, ok := parseAssign(string(kv.Key)); ok {
			out[s] = string(kv.Value)
		}
	}
	return out, resp.Header.Revision, nil
}

// followAssignments keeps this node's copy of the assignments current,
// telling cfg.OnAssign of each change. While etcd cannot be reached the last
// copy stands.
func (m *Member) followAssignments(ctx context.Context, rev int64) {
	for ctx.Err() == nil {
		w := m.cli.Watch(clientv3.WithRequireLeader(ctx), prefixAssign, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range w {
			if err := wr.Err(); err != nil {
				m.cfg.Log.Debug("assignment watch", "err", err)
				break
			}
			m.mu.Lock()
			for _, ev := range wr.Events {
				s, ok := parseAssign(string(ev.Kv.Key))
				if !ok {
					continue
				}
				if ev.Type == clientv3.EventTypeDelete {
					delete(m.assigned, s)
				} else {
					m.assigned[s] = string(ev.Kv.Value)
				}
			}
			m.mu.Unlock()
			rev = wr.Header.Revision
			if m.cfg.OnAssign != nil {
				m.cfg.OnAssign()
			}
		}
		// The watch ended (compaction, lost leader): read afresh, then watch again.
		select {
		case <-ctx.Done():
			return
		case <-m.cfg.Clock.After(200 * time.Millisecond):
		}
		all, r, err := m.loadAssignments(ctx)
		if err != nil {
			continue
		}
		m.mu.Lock()
		m.assigned = all
		m.mu.Unlock()
		rev = r
		if m.cfg.OnAssign != nil {
			m.cfg.OnAssign()
		}
	}
}

// Placed is the node of each placed slot of project (supervisor.Placement).
func (m *Member) Placed(project string) map[reconcile.SlotKey]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[reconcile.SlotKey]string{}
	if m.fenced {
		return out // a fenced node runs nothing, whatever it last read
	}
	for s, n := range m.assigned {
		if s.Project == project {
			out[reconcile.SlotKey{Service: s.Service, Slot: s.Slot}] = n
		}
	}
	return out
}

// Node is this node's name (supervisor.Placement).
func (m *Member) Node() string { return m.self.Name }

// placer is the leader's placement state while it leads.
type placer struct {
	current   map[place.Slot]string
	last      time.Time
	downSince map[string]time.Time // when this leader first saw each down node down
}

// gone tells a down node whose replicas may be placed elsewhere: down for
// fenceMargin more than the TTL, by when a cut-off node has had a whole
// second since it fenced itself (TTL - fenceMargin) to stop them.
func (pl *placer) gone(node string, st nodes.State, now time.Time) bool {
	if st != nodes.Down {
		delete(pl.downSince, node)
		return false
	}
	if pl.downSince == nil {
		pl.downSince = map[string]time.Time{}
	}
	if _, ok := pl.downSince[node]; !ok {
		pl.downSince[node] = now
	}
	return now.Sub(pl.downSince[node]) >= fenceMargin
}

// waiting tells whether a down node's margin has yet to pass: place again soon.
func (pl *placer) waiting(now time.Time) bool {
	for _, at := range pl.downSince {
		if now.Sub(at) < fenceMargin {
			return true
		}
	}
	return false
}

// place runs the planner over the desired slots and the judged nodes, and
// writes the assignments that changed in one transaction.
func (m *Member) place(ctx context.Context, pl *placer, states map[string]nodes.State) error {
	if m.cfg.Desired == nil {
		return nil
	}
	slots, err := m.cfg.Desired(ctx)
	if err != nil {
		return err
	}
	records, err := m.nodeRecords(ctx)
	if err != nil {
		return err
	}
	if err := m.relieve(ctx, records, states); err != nil {
		return err
	}
	now := m.cfg.Clock.Now()
	var ns []place.Node
	for _, n := range records {
		// A node down for less than the margin keeps its slots: it may still be stopping them.
		ns = append(ns, place.Node{Name: n.Name, Ready: !pl.gone(n.Name, states[n.Name], now),
			Cordoned: n.Mode == nodes.ModeCordon || states[n.Name] != nodes.Ready, Draining: n.Mode == nodes.ModeDrain})
	}
	next, moves := place.Plan(slots, ns, pl.current)
	var ops []clientv3.Op
	for s, n := range next {
		if pl.current[s] != n || !has(pl.current, s) {
			ops = append(ops, clientv3.OpPut(keyAssign(s), n))
		}
	}
	for s := range pl.current {
		if _, ok := next[s]; !ok {
			ops = append(ops, clientv3.OpDelete(keyAssign(s)))
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), 100) // etcd's default limit of operations in a transaction is 128
		if _, err := m.cli.Txn(ctx).Then(ops[:n]...).Commit(); err != nil {
			return fmt.Errorf("etcd: write assignments: %w", err)
		}
		ops = ops[n:]
	}
	pl.current = next
	if len(moves) > 0 && m.cfg.OnMove != nil {
		m.cfg.OnMove(moves)
	}
	return nil
}

func has(m map[place.Slot]string, s place.Slot) bool {
	_, ok := m[s]
	return ok
}
