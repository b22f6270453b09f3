package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// SlotKey names a replica slot of a service.
type SlotKey struct {
	Service string
	Slot    int
}

func (k SlotKey) String() string { return fmt.Sprintf("%s/%d", k.Service, k.Slot) }

// History is what tend remembers about a slot, between passes and across
// restarts of tend. The planner reads it and hands back the next version with
// each action; the caller persists it.
type History struct {
	// Container is the last container seen in the slot; empty until the slot first had one.
	Container string `json:"container,omitempty"`
	// Node is, in a cluster, the node Container was seen on.
	Node string `json:"node,omitempty"`
	// Streak holds the times of the restarts in the current crash streak, oldest first.
	Streak []time.Time `json:"streak,omitempty"`
	// Restarts counts every restart of the slot, for people to read.
	Restarts int `json:"restarts"`
	// Settled identifies the last exit the planner chose not to restart, by the
	// start time of the run that ended.
	Settled time.Time `json:"settled,omitzero"`
	// ReadyRun identifies, by its start time, the last run tend saw ready:
	// a kill from outside after such a run is not a crash of the program.
	ReadyRun time.Time `json:"ready_run,omitzero"`
	// Done marks a slot whose job has run to its end: it is not run again, even if removed.
	Done bool `json:"done,omitempty"`
	// GaveUp marks a slot that used up its restart attempts.
	GaveUp bool `json:"gave_up,omitempty"`
	// Failures counts the actions on the slot that failed in a row; the next
	// waits a backoff after FailedAt, so a failing engine call is no hot loop.
	Failures  int       `json:"failures,omitempty"`
	FailedAt  time.Time `json:"failed_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// Equal reports whether two memories are the same.
func (h History) Equal(o History) bool {
	return h.Container == o.Container && h.Node == o.Node && slices.Equal(h.Streak, o.Streak) && h.Restarts == o.Restarts &&
		h.Settled.Equal(o.Settled) && h.ReadyRun.Equal(o.ReadyRun) && h.Done == o.Done && h.GaveUp == o.GaveUp &&
		h.Failures == o.Failures && h.FailedAt.Equal(o.FailedAt) && h.LastError == o.LastError
}

// maxErrorText bounds the error kept in a slot's memory.
const maxErrorText = 300

// Outcome is the slot's memory once an action was carried out: a container
// it created is known from now on (so its removal reads as "missing"), and a
// failure is counted so the next action on the slot waits.
func Outcome(h History, id string, err error, now time.Time) History {
	if id != "" {
		h.Container = id
	}
	if err != nil {
		h.Failures++
		h.FailedAt = now
		h.LastError = err.Error()
		if len(h.LastError) > maxErrorText {
			h.LastError = h.LastError[:maxErrorText] + "..."
		}
		return h
	}
	h.Failures, h.FailedAt, h.LastError = 0, time.Time{}, ""
	return h
}

// retryAt is when a slot whose last actions failed may be acted on again.
func retryAt(h History, b spec.Backoff, k SlotKey) time.Time {
	if h.Failures == 0 {
		return time.Time{}
	}
	return h.FailedAt.Add(Backoff(spec.RestartPolicy{}, b, h.Failures, "failed "+k.String()))
}

// streakCap bounds Streak: older entries can no longer change a decision once
// the backoff is at its cap.
const streakCap = 64

// Observed is what the supervisor saw, plus what it remembers.
type Observed struct {
	Containers []runtime.Container
	History    map[SlotKey]History
	Health     map[string]Health // by container ID; a container without an entry is neither sick nor ready
	// EngineDown are the spans in which the engine was unreachable (a
	// restart of dockerd): an exit within one is the engine stopping its
	// containers on its way down, not a crash of the program.
	EngineDown []Span
	// Specs are the slots a rollout keeps on an older spec of their service
	// meanwhile: they are healed as that spec, not replaced (internal/rollout).
	Specs map[SlotKey]*spec.Service
	// Placed is, in a cluster, the node each slot is assigned to ("" or
	// absent: none yet), and Node is this host's: a slot placed elsewhere
	// is not run here, and a container of it here goes. Nil on a single
	// host, where every slot is this host's.
	Placed map[SlotKey]string
	Node   string
}

// away tells a slot this host does not run, and where it runs.
func (o Observed) away(k SlotKey) (bool, string) {
	if o.Placed == nil {
		return false, ""
	}
	n := o.Placed[k]
	return n != o.Node, n
}

// Span is a stretch of time, both ends included.
type Span struct {
	From, To time.Time
}

// Kind is what an action does.
type Kind string

const (
	Create  Kind = "create"  // create and start a new container in the slot
	Start   Kind = "start"   // start the slot's existing container
	Restart Kind = "restart" // start the slot's exited container again
	Replace Kind = "replace" // remove the slot's container, then create and start a new one
	Remove  Kind = "remove"  // stop and remove a container that should not exist
	Settle  Kind = "settle"  // leave an exited container as it is (completed, or given up); journal only
	// Surge creates and starts a replacement next to the slot's sick container
	// (named runtime.SurgeName), which keeps running until the replacement is ready.
	Surge Kind = "surge"
	// Takeover stops and removes the slot's old container (if any) and gives
	// the replacement, Action.Surge, the slot's name.
	Takeover Kind = "takeover"
	// Unpause thaws the slot's container, which someone paused: frozen, it
	// answers nothing and its checks cannot run, and the engine never thaws it.
	Unpause Kind = "unpause"
)

// Reason is why an action is taken, in a word a person can grep for.
type Reason string

const (
	ReasonNew         Reason = "new"          // the slot never had a container
	ReasonMissing     Reason = "missing"      // its container was removed outside tend
	ReasonNotStarted  Reason = "not-started"  // created but never started (tend stopped in between)
	ReasonExited      Reason = "exited"       // the process exited and the policy restarts it
	ReasonSpecChanged Reason = "spec-changed" // it runs an older spec
	ReasonScaleIn     Reason = "scale-in"     // the slot is beyond the desired replicas
	ReasonNotInSpec   Reason = "not-in-spec"  // its service is no longer in the project
	ReasonDuplicate   Reason = "duplicate"    // another container holds the same slot
	ReasonCompleted   Reason = "completed"    // it exited and the policy does not restart it
	ReasonMaxAttempts Reason = "max-attempts" // it used up restart_policy.max_attempts
	ReasonPaused      Reason = "paused"       // it was paused outside tend (docker pause)
	ReasonEngineDown  Reason = "engine-down"  // the engine stopped it on its way down (a restart of dockerd)

	ReasonLiveness          Reason = "liveness"            // its x-tend liveness probe fails
	ReasonUnhealthy         Reason = "unhealthy"           // the engine's health check (compose healthcheck) says unhealthy
	ReasonLogMatch          Reason = "log-match"           // a log rule with action replace fired
	ReasonHung              Reason = "hung"                // requests wait on it through tend's proxy and it answers none
	ReasonReplacementReady  Reason = "replacement-ready"   // the replacement of a sick replica can take over
	ReasonReplacementFailed Reason = "replacement-failed"  // the replacement exited or fell sick before it took over
	ReasonDependency        Reason = "dependency-replaced" // a service it depends on (restart: true) was replaced
	ReasonSuspect           Reason = "suspect"             // its liveness probe began to fail: a standby starts
	ReasonRecovered         Reason = "recovered"           // the suspect passes again: its standby goes
	ReasonNetworkReplaced   Reason = "network-replaced"    // it shares the network of a replica that was replaced (network_mode service:NAME)
	ReasonByHand            Reason = "by-hand"             // a person asked for it (POST .../restart, the dashboard)
	ReasonPlaced            Reason = "placed-elsewhere"    // in a cluster, the slot is assigned to another node
	ReasonMoved             Reason = "moved"               // in a cluster, the slot came to this node from another
)

// Action is one step of a plan.
type Action struct {
	Kind      Kind
	Service   string
	Slot      int
	Container string // the container acted on; empty for Create
	Surge     string // Takeover: the replacement that takes the slot
	Reason    Reason
	Message   string // what a person reads in the journal
}

// Wait is a slot the planner is deliberately leaving alone for now.
type Wait struct {
	Service string
	Slot    int
	Until   time.Time // zero: until something else changes
	Message string
}

// Result is the planner's answer.
type Result struct {
	Actions []Action
	Waits   []Wait
	// History holds the slots whose memory changed; a zero History means the
	// slot is forgotten. The caller persists it before carrying out Actions, so
	// an attempt counts even if tend dies during it.
	History map[SlotKey]History
	// Wake is when to plan again even if nothing happens; zero means no need.
	Wake time.Time
}

func (p *Result) act(a Action) { p.Actions = append(p.Actions, a) }

func (p *Result) wait(w Wait) {
	p.Waits = append(p.Waits, w)
	if !w.Until.IsZero() && (p.Wake.IsZero() || w.Until.Before(p.Wake)) {
		p.Wake = w.Until
	}
}

// Plan returns the actions that bring observed toward desired at now.
func Plan(desired *spec.Project, observed Observed, now time.Time) Result {
	plan := Result{History: map[SlotKey]History{}}
	slots := map[SlotKey][]runtime.Container{}
	for _, c := range observed.Containers {
		k := SlotKey{c.Service, c.Slot}
		slots[k] = append(slots[k], c)
	}
	byService := map[string][]runtime.Container{}
	for _, c := range observed.Containers {
		byService[c.Service] = append(byService[c.Service], c)
	}

	// Containers that no slot of the design holds go first, so names are free.
	for _, k := range sortedKeys(slots) {
		svc, ok := desired.Service(k.Service)
		b := spec.Backoff{Initial: spec.DefaultBackoffInitial, Max: spec.DefaultBackoffMax}
		if ok {
			b = svc.Tend.Backoff
		}
		if at := retryAt(observed.History[k], b, k); now.Before(at) && (!ok || k.Slot < 1 || k.Slot > svc.Replicas) {
			plan.wait(Wait{Service: k.Service, Slot: k.Slot, Until: at, Message: "retrying the removal after: " + observed.History[k].LastError})
			continue
		}
		switch {
		case !ok:
			removeAll(&plan, slots[k], ReasonNotInSpec, "service %q is not in the project", k.Service)
		case k.Slot < 1 || k.Slot > svc.Replicas:
			removeAll(&plan, slots[k], ReasonScaleIn, "slot %d is beyond replicas=%d", k.Slot, svc.Replicas)
		}
	}
	// The memory of slots outside the design goes with them: a slot that comes
	// back (scale out, a service added again) starts afresh, not as missing,
	// done or given up. Only a failed removal is remembered, to pace its retries.
	for k, h := range observed.History {
		if svc, ok := desired.Service(k.Service); (!ok || k.Slot < 1 || k.Slot > svc.Replicas) && !h.Equal(History{}) && (h.Failures == 0 || len(slots[k]) == 0) {
			plan.History[k] = History{}
		}
	}
	for i := range desired.Services {
		svc := &desired.Services[i]
		for slot := 1; slot <= svc.Replicas; slot++ {
			k := SlotKey{svc.Name, slot}
			if away, node := observed.away(k); away {
				// Not this host's slot: its memory is the other node's to keep.
				if node == "" {
					node = "no node yet"
				}
				removeAll(&plan, slots[k], ReasonPlaced, "slot %d runs on %s", slot, node)
				continue
			}
			if at := retryAt(observed.History[k], svc.Tend.Backoff, k); now.Before(at) {
				plan.wait(Wait{Service: svc.Name, Slot: slot, Until: at, Message: fmt.Sprintf("retrying in %s after: %s",
					at.Sub(now).Round(time.Millisecond), observed.History[k].LastError)})
				continue
			}
			runs := svc
			if pinned := observed.Specs[k]; pinned != nil {
				runs = pinned
			}
			s := slotPlanner{svc: runs, key: k, history: observed.History[k], now: now, plan: &plan, health: observed.Health,
				engineDown: observed.EngineDown, networkOwner: networkOwner(desired, svc, slots), node: observed.Node}
			own, surges := splitSurges(slots[k], desired.Name, svc, k)
			keep := s.dedupe(own)
			if next := s.dedupe(surges); next != nil {
				s.surge(keep, *next, observed.Health)
			} else {
				s.plan1(keep, func() (bool, string) { return depsReady(desired, svc, byService) })
			}
			if !s.history.Equal(observed.History[k]) {
				plan.History[k] = s.history
			}
		}
	}
	return plan
}

func removeAll(plan *Result, cs []runtime.Container, r Reason, format string, args ...any) {
	for _, c := range cs {
		plan.act(Action{Kind: Remove, Service: c.Service, Slot: c.Slot, Container: c.ID, Reason: r,
			Message: fmt.Sprintf(format, args...)})
	}
}

func sortedKeys(m map[SlotKey][]runtime.Container) []SlotKey {
	keys := make([]SlotKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b SlotKey) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Slot, b.Slot))
	})
	return keys
}
