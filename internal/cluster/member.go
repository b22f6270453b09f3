package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/nodes"
	"github.com/tend-sh/tend/internal/place"
)

// Ports are the TCP ports a node serves the cluster on, at its --advertise address.
type Ports struct {
	Join   int // managers: the join endpoint (HTTPS; the token proves the right to join)
	Client int // managers: etcd's clients
	Peer   int // managers: etcd's members among themselves
}

// DefaultPorts are the ports of a node that names none.
var DefaultPorts = Ports{Join: 7370, Client: 2379, Peer: 2380}

// Defaults of the heartbeat: a node beats every Beat and is down once the
// leader has seen no beat of it for TTL.
const (
	DefaultBeat = 250 * time.Millisecond
	DefaultTTL  = 1500 * time.Millisecond
)

// Config makes a node of a cluster: Init makes a new cluster, Join joins one.
// A node that was in a cluster before (its data holds the cluster's files)
// rejoins it with neither.
type Config struct {
	Dir       string // the node's cluster files and etcd's data: <data>/cluster
	Name      string // default: the host name
	Advertise string // the address other hosts reach this one on (an IP)
	Init      bool
	Join      string // a manager's address, host or host:port (the join port)
	Token     string
	Manager   bool // join as a manager (needs a manager token)
	Ports     Ports
	Beat, TTL time.Duration
	Clock     clock.Clock
	Log       *slog.Logger
	// Desired are the slots the projects ask for, read by the leader to
	// place them; OnMove hears of its placements, for the journal.
	Desired func(ctx context.Context) ([]place.Slot, error)
	OnMove  func([]place.Move)
	// OnAssign is told when this node's copy of the assignments changed.
	OnAssign func()
	// OnFence is told when this node has gone FenceAfter without etcd
	// taking its heartbeat: it must stop its replicas now, before the leader
	// (after TTL on its clock) places them elsewhere. OnUnfence is told when
	// a heartbeat is taken again.
	OnFence, OnUnfence func()
	// OnReports is told when a node's report of its replicas changed.
	OnReports func()
	// Figures measures this node's resources (nil: none reported); the
	// leader drains a node under Pressure (default nodes.DefaultPressure)
	// and tells OnNode, for the journal.
	Figures  func() nodes.Figures
	Pressure nodes.Pressure
	OnNode   func(action, node, reason, message string)
}

// fenceMargin is how much sooner than the TTL a cut-off node stops its
// replicas: the time to stop them, and the gap between the leader seeing a
// heartbeat and this node hearing that etcd took it.
const fenceMargin = 500 * time.Millisecond

// Member is this host's part of the cluster: its heartbeat, and on a manager
// etcd, the join endpoint and, while it leads, the judge of the other nodes.
type Member struct {
	cfg    Config
	id     identity
	self   nodes.Node
	etcd   *embed.Etcd // managers only
	cli    *clientv3.Client
	joinLn net.Listener // managers only

	mu       sync.Mutex
	lastAck  time.Time             // the last heartbeat etcd took, on this host's clock
	fenced   bool                  // no heartbeat taken for TTL-fenceMargin: replicas stopped
	assigned map[place.Slot]string // the assignments as this node last read them
	assignAt int64                 // the revision they were read at
	reports  map[string][]byte     // every node's replicas as it reported them, by node
	reported []byte                // this node's last report written
}

// saved is what a node keeps of its cluster in cluster.json, to rejoin after a restart.
type saved struct {
	Name      string     `json:"name"`
	Address   string     `json:"address"`
	Role      nodes.Role `json:"role"`
	Endpoints []string   `json:"endpoints"` // etcd's client URLs
	Ports     Ports      `json:"ports"`
}

// Start makes, joins or rejoins the cluster and returns once this node is
// registered in it. Run does the rest.
func Start(ctx context.Context, cfg Config) (*Member, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Ports == (Ports{}) {
		cfg.Ports = DefaultPorts
	}
	if cfg.Beat <= 0 {
		cfg.Beat = DefaultBeat
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Pressure == (nodes.Pressure{}) {
		cfg.Pressure = nodes.DefaultPressure
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		cfg.Name = h
	}
	m := &Member{cfg: cfg, id: identity{dir: cfg.Dir}}
	var err error
	switch {
	case m.id.exists():
		if cfg.Init || cfg.Join != "" {
			return nil, errs.E(errs.Conflict, "%s holds a cluster this host is in already; start without --cluster-init or --join to rejoin it (or use another --data)", cfg.Dir)
		}
		err = m.rejoin(ctx)
	case cfg.Init:
		err = m.init(ctx)
	case cfg.Join != "":
		err = m.join(ctx)
	default:
		return nil, errs.E(errs.Invalid, "not in a cluster: give --cluster-init or --join")
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	if err := m.register(ctx); err != nil {
		m.Close()
		return nil, err
	}
	// Read before the supervisor runs: it must not take a slot it has not
	// read yet for one placed elsewhere.
	if m.assigned, m.assignAt, err = m.loadAssignments(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Member) check() error {
	if net.ParseIP(m.cfg.Advertise) == nil {
		return errs.E(errs.Invalid, "--advertise %q: give the IP address other hosts reach this one on", m.cfg.Advertise)
	}
	if strings.ContainsAny(m.cfg.Name, "/ ") || m.cfg.Name == "" {
		return errs.E(errs.Invalid, "node name %q: no spaces or slashes", m.cfg.Name)
	}
	return nil
}

func (m *Member) init(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	now := m.cfg.Clock.Now()
	ca, err := newAuthority(now)
	if err != nil {
		return err
	}
	if err := m.id.writeCA(ca); err != nil {
		return err
	}
	key, err := m.id.newKey()
	if err != nil {
		return err
	}
	der, err := ca.sign(&key.PublicKey, m.cfg.Name, net.ParseIP(m.cfg.Advertise), now)
	if err != nil {
		return err
	}
	if err := m.id.writeCert(der); err != nil {
		return err
	}
	m.self = nodes.Node{Name: m.cfg.Name, Address: m.cfg.Advertise, Role: nodes.Manager, Joined: now}
	initial := m.cfg.Name + "=" + m.peerURL()
	if m.etcd, err = startEtcd(m.etcdDir(), m.id, m.cfg.Name, m.cfg.Advertise, m.cfg.Ports, initial, false); err != nil {
		return err
	}
	if m.cli, err = newClient(m.id, []string{m.clientURL()}); err != nil {
		return err
	}
	b, _ := json.Marshal(newSecrets())
	// Only the first start of the cluster writes the secrets.
	if _, err := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(keySecrets), "=", 0)).
		Then(clientv3.OpPut(keySecrets, string(b))).Commit(); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	if err := m.save([]string{m.clientURL()}); err != nil {
		return err
	}
	return m.listenJoin()
}

func (m *Member) rejoin(ctx context.Context) error {
	b, err := os.ReadFile(m.id.path(stateFile))
	if err != nil {
		return fmt.Errorf("cluster state: %w", err)
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: %w", m.id.path(stateFile), err)
	}
	if m.cfg.Advertise != "" && m.cfg.Advertise != s.Address {
		return errs.E(errs.Conflict, "this node joined as %s; --advertise %s differs (a node's address does not change: leave and join again)", s.Address, m.cfg.Advertise)
	}
	m.cfg.Name, m.cfg.Advertise, m.cfg.Ports = s.Name, s.Address, s.Ports
	m.self = nodes.Node{Name: s.Name, Address: s.Address, Role: s.Role}
	if s.Role == nodes.Manager {
		// Its own data tells etcd the cluster; the initial one is not read again.
		if m.etcd, err = startEtcd(m.etcdDir(), m.id, s.Name, s.Address, s.Ports, s.Name+"="+m.peerURL(), true); err != nil {
			return err
		}
	}
	m.cli, err = newClient(m.id, s.Endpoints)
	if err != nil {
		return err
	}
	if s.Role == nodes.Manager {
		return m.listenJoin()
	}
	return nil
}

func (m *Member) save(endpoints []string) error {
	b, err := json.MarshalIndent(saved{Name: m.self.Name, Address: m.self.Address, Role: m.self.Role, Endpoints: endpoints, Ports: m.cfg.Ports}, "", "  ")
	if err != nil {
		return err
	}
	tmp := m.id.path(stateFile) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.id.path(stateFile))
}

// register writes this node's record, keeping the time it first joined.
func (m *Member) register(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := m.cli.Get(ctx, keyNode(m.self.Name))
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	if len(resp.Kvs) == 1 {
		var old nodes.Node
		if json.Unmarshal(resp.Kvs[0].Value, &old) == nil && !old.Joined.IsZero() {
			m.self.Joined, m.self.Mode = old.Joined, old.Mode // a restart keeps both
		}
	}
	if m.self.Joined.IsZero() {
		m.self.Joined = m.cfg.Clock.Now()
	}
	b, _ := json.Marshal(m.self)
	if _, err := m.cli.Put(ctx, keyNode(m.self.Name), string(b)); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	m.cfg.Log.Info("in the cluster", "node", m.self.Name, "address", m.self.Address, "role", m.self.Role)
	return nil
}

// Run beats, and on a manager serves joins and campaigns to lead, until ctx ends.
func (m *Member) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.beat(ctx) }()
	go func() { defer wg.Done(); m.followAssignments(ctx, m.assignAt) }()
	wg.Add(2)
	go func() { defer wg.Done(); m.fence(ctx) }()
	go func() { defer wg.Done(); m.followReports(ctx) }()
	if m.cfg.Figures != nil {
		wg.Add(1)
		go func() { defer wg.Done(); m.reportFigures(ctx) }()
	}
	if m.self.Role == nodes.Manager {
		wg.Add(2)
		go func() { defer wg.Done(); m.serveJoin(ctx) }()
		go func() { defer wg.Done(); m.lead(ctx) }()
	}
	var err error
	if m.etcd != nil {
		select {
		case <-ctx.Done():
		case err = <-m.etcd.Err():
			err = fmt.Errorf("etcd: %w", err)
		}
	} else {
		<-ctx.Done()
	}
	wg.Wait()
	return err
}

// Close stops etcd and the client.
func (m *Member) Close() {
	if m.joinLn != nil {
		m.joinLn.Close()
	}
	if m.cli != nil {
		m.cli.Close()
	}
	if m.etcd != nil {
		m.etcd.Close()
	}
}

// beat writes this node's heartbeat every Beat. The value is a counter the
// judge compares with the last it read: the key's write is the sign of life.
func (m *Member) beat(ctx context.Context) {
	n := uint64(m.cfg.Clock.Now().UnixNano()) // a restarted node never repeats a counter
	for {
		n++
		bctx, cancel := context.WithTimeout(ctx, m.cfg.Beat*2)
		_, err := m.cli.Put(bctx, keyBeat(m.self.Name), strconv.FormatUint(n, 10))
		cancel()
		if err == nil {
			m.mu.Lock()
			m.lastAck = m.cfg.Clock.Now()
			was := m.fenced
			m.fenced = false
			m.mu.Unlock()
			if was {
				m.cfg.Log.Info("heartbeat taken again; replicas may run", "node", m.self.Name)
				if m.cfg.OnUnfence != nil {
					m.cfg.OnUnfence()
				}
			}
		} else if ctx.Err() == nil {
			m.cfg.Log.Debug("heartbeat", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.cfg.Clock.After(m.cfg.Beat):
		}
	}
}

// fence watches the heartbeat's acknowledgements on this host's clock, and
// fences the node when they stop: a node cut off from etcd must not run
// replicas that the leader is about to start elsewhere.
func (m *Member) fence(ctx context.Context) {
	after := m.cfg.TTL - fenceMargin
	m.mu.Lock()
	if m.lastAck.IsZero() {
		m.lastAck = m.cfg.Clock.Now() // registered a moment ago: etcd took a write
	}
	m.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.cfg.Clock.After(50 * time.Millisecond):
		}
		m.mu.Lock()
		silent := m.cfg.Clock.Now().Sub(m.lastAck)
		fire := silent >= after && !m.fenced
		if fire {
			m.fenced = true
		}
		m.mu.Unlock()
		if fire {
			m.cfg.Log.Warn("fenced: etcd took no heartbeat; stopping this node's replicas before they are placed elsewhere",
				"node", m.self.Name, "silent", silent.Round(time.Millisecond))
			if m.cfg.OnFence != nil {
				m.cfg.OnFence()
			}
		}
	}
}

// Fenced tells a node that has stopped its replicas for want of a heartbeat.
func (m *Member) Fenced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fenced
}

// LastAck is when etcd last took this node's heartbeat, on this host's clock.
func (m *Member) LastAck() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastAck
}

const (
	prefixReplicas = "/tend/replicas/"
	prefixFigures  = "/tend/figures/"
	figuresEvery   = 2 * time.Second
)

// reportFigures writes this node's resources every figuresEvery.
func (m *Member) reportFigures(ctx context.Context) {
	for {
		b, _ := json.Marshal(m.cfg.Figures())
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, _ = m.cli.Put(pctx, prefixFigures+m.self.Name, string(b))
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-m.cfg.Clock.After(figuresEvery):
		}
	}
}

// relieve drains a ready node under pressure and undrains one tend drained
// once its pressure is gone (with hysteresis); a mode a person set stays.
func (m *Member) relieve(ctx context.Context, records []nodes.Node, states map[string]nodes.State) error {
	resp, err := m.cli.Get(ctx, prefixFigures, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	figures := map[string]nodes.Figures{}
	for _, kv := range resp.Kvs {
		var f nodes.Figures
		if json.Unmarshal(kv.Value, &f) == nil {
			figures[strings.TrimPrefix(string(kv.Key), prefixFigures)] = f
		}
	}
	for i, n := range records {
		f, ok := figures[n.Name]
		if !ok || states[n.Name] != nodes.Ready {
			continue
		}
		ours := n.Mode == nodes.ModeDrain && n.Pressure != ""
		under, why := m.cfg.Pressure.Under(f, ours)
		switch {
		case under && n.Mode == nodes.Active:
			if err := m.setMode(ctx, n.Name, nodes.ModeDrain, why); err != nil {
				return err
			}
			records[i].Mode = nodes.ModeDrain
			m.tell("node-drain", n.Name, "pressure", fmt.Sprintf("%s: %s; drained, its replicas move to other nodes", why, f))
		case !under && ours:
			if err := m.setMode(ctx, n.Name, nodes.Active, ""); err != nil {
				return err
			}
			records[i].Mode = nodes.Active
			m.tell("node-uncordon", n.Name, "pressure-relieved", fmt.Sprintf("%s: past its thresholds again; takes replicas again", f))
		}
	}
	return nil
}

func (m *Member) tell(action, node, reason, msg string) {
	m.cfg.Log.Info("node "+node+": "+msg, "action", action, "reason", reason)
	if m.cfg.OnNode != nil {
		m.cfg.OnNode(action, node, reason, msg)
	}
}

// Report stores what this node reports of its replicas (JSON), for `tend ps`
// and the proxies on the other nodes; an unchanged report is not written again.
func (m *Member) Report(ctx context.Context, b []byte) error {
	m.mu.Lock()
	same := string(m.reported) == string(b)
	m.mu.Unlock()
	if same {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := m.cli.Put(ctx, prefixReplicas+m.self.Name, string(b)); err != nil {
		return err
	}
	m.mu.Lock()
	m.reported = b
	m.mu.Unlock()
	return nil
}

// Reports are every node's last report, by node, as this node last read them.
func (m *Member) Reports() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.reports)
}

// followReports keeps this node's copy of every node's report, telling
// cfg.OnReports of each change.
func (m *Member) followReports(ctx context.Context) {
	for ctx.Err() == nil {
		resp, err := m.cli.Get(ctx, prefixReplicas, clientv3.WithPrefix())
		if err == nil {
			all := map[string][]byte{}
			for _, kv := range resp.Kvs {
				all[strings.TrimPrefix(string(kv.Key), prefixReplicas)] = kv.Value
			}
			m.mu.Lock()
			m.reports = all
			m.mu.Unlock()
			m.reportsChanged()
			for wr := range m.cli.Watch(clientv3.WithRequireLeader(ctx), prefixReplicas, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
				if wr.Err() != nil {
					break
				}
				m.mu.Lock()
				for _, ev := range wr.Events {
					node := strings.TrimPrefix(string(ev.Kv.Key), prefixReplicas)
					if ev.Type == clientv3.EventTypeDelete {
						delete(m.reports, node)
					} else {
						m.reports[node] = ev.Kv.Value
					}
				}
				m.mu.Unlock()
				m.reportsChanged()
			}
		}
		select {
		case <-ctx.Done():
		case <-m.cfg.Clock.After(500 * time.Millisecond):
		}
	}
}

func (m *Member) reportsChanged() {
	if m.cfg.OnReports != nil {
		m.cfg.OnReports()
	}
}

// Client is this node's etcd client, for the store of the cluster's state.
func (m *Member) Client() *clientv3.Client { return m.cli }

// Self is this node.
func (m *Member) Self() nodes.Node { return m.self }

// lead campaigns to lead the cluster and, while it leads, judges the nodes.
func (m *Member) lead(ctx context.Context) {
	for ctx.Err() == nil {
		if err := m.campaign(ctx); err != nil && ctx.Err() == nil {
			m.cfg.Log.Warn("leader election", "err", err)
			select {
			case <-ctx.Done():
			case <-m.cfg.Clock.After(time.Second):
			}
		}
	}
}

func (m *Member) campaign(ctx context.Context) error {
	// The session's lease is the leadership: a leader that dies or is cut off
	// loses it when the lease runs out (etcd's shortest is about 2 s).
	sess, err := concurrency.NewSession(m.cli, concurrency.WithTTL(leaderTTL), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, keyLeader)
	if err := el.Campaign(ctx, m.self.Name); err != nil {
		return err
	}
	m.cfg.Log.Info("leading the cluster", "node", m.self.Name)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			m.cfg.Log.Warn("leadership lost", "node", m.self.Name)
		case <-lctx.Done():
		}
		cancel()
	}()
	err = m.judge(lctx)
	if ctx.Err() == nil {
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		_ = el.Resign(rctx)
		rcancel()
	}
	return err
}

const leaderTTL = 2 // seconds

// judge reads every heartbeat and writes each node's state when it changes,
// until ctx ends (leadership lost). The times compared are all this host's.
func (m *Member) judge(ctx context.Context) error {
	j := nodes.NewJudge(m.cfg.TTL, m.cfg.Clock.Now())
	resp, err := m.cli.Get(ctx, prefixStatus, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	states := map[string]nodes.State{}
	for _, kv := range resp.Kvs {
		var st storedStatus
		if json.Unmarshal(kv.Value, &st) == nil {
			states[strings.TrimPrefix(string(kv.Key), prefixStatus)] = st.State
		}
	}
	current, _, err := m.loadAssignments(ctx)
	if err != nil {
		return err
	}
	pl := &placer{current: current}
	watch := m.cli.Watch(clientv3.WithRequireLeader(ctx), prefixBeats, clientv3.WithPrefix())
	tick := m.cfg.TTL / 10
	next := m.cfg.Clock.After(tick) // not renewed by a beat: beats come more often than ticks
	for {
		select {
		case <-ctx.Done():
			return nil
		case wr, ok := <-watch:
			if !ok {
				return errors.New("heartbeat watch ended")
			}
			if err := wr.Err(); err != nil {
				return err
			}
			now := m.cfg.Clock.Now()
			for _, ev := range wr.Events {
				n, _ := strconv.ParseUint(string(ev.Kv.Value), 10, 64)
				j.Beat(strings.TrimPrefix(string(ev.Kv.Key), prefixBeats), n, now)
			}
		case <-next:
			next = m.cfg.Clock.After(tick)
			changed, err := m.judgeAll(ctx, j, states)
			if err != nil {
				return err
			}
			if now := m.cfg.Clock.Now(); changed || pl.waiting(now) || now.Sub(pl.last) >= placeEvery {
				pl.last = now
				if err := m.place(ctx, pl, states); err != nil {
					m.cfg.Log.Warn("placement", "err", err)
				}
			}
		}
	}
}

// judgeAll judges every node and writes the states that changed; it tells whether any did.
func (m *Member) judgeAll(ctx context.Context, j *nodes.Judge, states map[string]nodes.State) (bool, error) {
	all, err := m.nodeRecords(ctx)
	if err != nil {
		return false, err
	}
	changed := false
	now := m.cfg.Clock.Now()
	for _, n := range all {
		st := j.State(n.Name, now)
		if states[n.Name] == st {
			continue
		}
		b, _ := json.Marshal(storedStatus{State: st, Since: now, By: m.self.Name})
		if _, err := m.cli.Put(ctx, keyStatus(n.Name), string(b)); err != nil {
			return changed, err
		}
		changed = true
		if old, ok := states[n.Name]; ok || st != nodes.Ready {
			m.cfg.Log.Info("node "+string(st), "node", n.Name, "was", string(old), "ttl", m.cfg.TTL)
		}
		states[n.Name] = st
	}
	return changed, nil
}

// storedStatus is a node's state as the leader wrote it.
type storedStatus struct {
	State nodes.State `json:"state"`
	Since time.Time   `json:"since"`
	By    string      `json:"by"` // the leader that judged it
}

func (m *Member) nodeRecords(ctx context.Context) ([]nodes.Node, error) {
	resp, err := m.cli.Get(ctx, prefixNodes, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	var all []nodes.Node
	for _, kv := range resp.Kvs {
		var n nodes.Node
		if err := json.Unmarshal(kv.Value, &n); err == nil {
			all = append(all, n)
		}
	}
	return all, nil
}

// Nodes lists the cluster's nodes with their states and the leader.
func (m *Member) Nodes(ctx context.Context) ([]nodes.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	all, err := m.nodeRecords(ctx)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, fmt.Errorf("etcd: %w", err))
	}
	resp, err := m.cli.Get(ctx, prefixStatus, clientv3.WithPrefix())
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, fmt.Errorf("etcd: %w", err))
	}
	stored := map[string]storedStatus{}
	for _, kv := range resp.Kvs {
		var st storedStatus
		if json.Unmarshal(kv.Value, &st) == nil {
			stored[strings.TrimPrefix(string(kv.Key), prefixStatus)] = st
		}
	}
	leader := ""
	if lr, err := m.cli.Get(ctx, keyLeader+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1)); err == nil && len(lr.Kvs) == 1 {
		leader = string(lr.Kvs[0].Value)
	}
	out := make([]nodes.Status, 0, len(all))
	for _, n := range all {
		st, ok := stored[n.Name]
		if !ok {
			st.State = nodes.Ready // registered a moment ago; the leader has not judged it yet
			st.Since = n.Joined
		}
		out = append(out, nodes.Status{Node: n, State: n.Shown(st.State), Since: st.Since, Leader: n.Name == leader})
	}
	return nodes.Sorted(out), nil
}

// SetMode cordons, drains or (Active) uncordons a node, as a person asks;
// the leader places by it.
func (m *Member) SetMode(ctx context.Context, name string, mode nodes.Mode) error {
	return m.setMode(ctx, name, mode, "")
}

// setMode sets a node's mode; pressure is why tend set it ("": a person did).
func (m *Member) setMode(ctx context.Context, name string, mode nodes.Mode, pressure string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		resp, err := m.cli.Get(ctx, keyNode(name))
		if err != nil {
			return errs.Wrap(errs.Unavailable, fmt.Errorf("etcd: %w", err))
		}
		if len(resp.Kvs) == 0 {
			return errs.E(errs.NotFound, "no node %q in the cluster", name)
		}
		var n nodes.Node
		if err := json.Unmarshal(resp.Kvs[0].Value, &n); err != nil {
			return err
		}
		n.Mode, n.Pressure = mode, pressure
		b, _ := json.Marshal(n)
		txn, err := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(keyNode(name)), "=", resp.Kvs[0].ModRevision)).
			Then(clientv3.OpPut(keyNode(name), string(b))).Commit()
		if err != nil {
			return errs.Wrap(errs.Unavailable, fmt.Errorf("etcd: %w", err))
		}
		if txn.Succeeded {
			m.cfg.Log.Info("node mode set", "node", name, "mode", string(mode))
			return nil
		}
	}
}

// JoinToken is the token that lets a host join as role.
func (m *Member) JoinToken(ctx context.Context, role nodes.Role) (string, error) {
	if m.self.Role != nodes.Manager {
		return "", errs.E(errs.Conflict, "this node is a worker; ask a manager for a join token")
	}
	s, err := m.secrets(ctx)
	if err != nil {
		return "", err
	}
	sec, err := s.of(role)
	if err != nil {
		return "", errs.Wrap(errs.Invalid, err)
	}
	ca, err := m.id.readCA()
	if err != nil {
		return "", err
	}
	return token{caHash: ca.hash(), secret: sec}.String(), nil
}

func (m *Member) secrets(ctx context.Context) (secrets, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := m.cli.Get(ctx, keySecrets)
	if err != nil {
		return secrets{}, errs.Wrap(errs.Unavailable, fmt.Errorf("etcd: %w", err))
	}
	if len(resp.Kvs) != 1 {
		return secrets{}, errors.New("the cluster has no join secrets")
	}
	var s secrets
	return s, json.Unmarshal(resp.Kvs[0].Value, &s)
}

func (m *Member) etcdDir() string { return filepath.Join(m.cfg.Dir, "etcd") }
func (m *Member) peerURL() string {
	return "https://" + net.JoinHostPort(m.cfg.Advertise, strconv.Itoa(m.cfg.Ports.Peer))
}
func (m *Member) clientURL() string {
	return "https://" + net.JoinHostPort(m.cfg.Advertise, strconv.Itoa(m.cfg.Ports.Client))
}

// The keys of the cluster in etcd.
const (
	keySecrets   = "/tend/cluster/secrets"
	keyLeader    = "/tend/leader"
	prefixNodes  = "/tend/nodes/"
	prefixBeats  = "/tend/beats/"
	prefixStatus = "/tend/status/"
)

func keyNode(n string) string   { return prefixNodes + n }
func keyBeat(n string) string   { return prefixBeats + n }
func keyStatus(n string) string { return prefixStatus + n }

func quietZap() *zap.Logger { return zap.NewNop() }
