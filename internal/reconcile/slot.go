package reconcile

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// slotPlanner decides for one desired slot.
type slotPlanner struct {
	svc     *spec.Service
	key     SlotKey
	history History
	now     time.Time
	plan    *Result
	health  map[string]Health
	// engineDown: when the engine was unreachable (Observed.EngineDown).
	engineDown []Span
	// networkOwner is the running container whose network svc shares
	// (network_mode service:NAME); nil when none runs.
	networkOwner *runtime.Container
	node         string // this host's, in a cluster (Observed.Node)
}

func (s *slotPlanner) act(kind Kind, container string, r Reason, format string, args ...any) {
	s.plan.act(Action{Kind: kind, Service: s.key.Service, Slot: s.key.Slot, Container: container,
		Reason: r, Message: fmt.Sprintf(format, args...)})
}

func (s *slotPlanner) wait(until time.Time, format string, args ...any) {
	s.plan.wait(Wait{Service: s.key.Service, Slot: s.key.Slot, Until: until, Message: fmt.Sprintf(format, args...)})
}

// dedupe keeps the best container of a slot and removes the others. Two can
// share a slot only if something outside tend made one; the keeper is the one
// that runs the current spec, then a running one, then the newest.
func (s *slotPlanner) dedupe(cs []runtime.Container) *runtime.Container {
	if len(cs) == 0 {
		return nil
	}
	hash := s.svc.Hash()
	score := func(c runtime.Container) int {
		n := 0
		if c.Hash == hash {
			n += 2
		}
		if c.State == runtime.Running {
			n++
		}
		return n
	}
	best := slices.MaxFunc(cs, func(a, b runtime.Container) int {
		if d := score(a) - score(b); d != 0 {
			return d
		}
		return a.Created.Compare(b.Created)
	})
	for _, c := range cs {
		if c.ID != best.ID {
			s.act(Remove, c.ID, ReasonDuplicate, "%s holds the same slot as %s", c.Name, best.Name)
		}
	}
	return &best
}

// plan1 decides what the slot needs; depsReady is asked only when a first
// container is about to be created, since depends_on orders start-up only.
func (s *slotPlanner) plan1(c *runtime.Container, depsReady func() (bool, string)) {
	if c == nil {
		s.missing(depsReady)
		return
	}
	s.history.Container, s.history.Node = c.ID, s.node // adopted, or made by an earlier pass
	if c.Hash != s.svc.Hash() {
		s.fresh()
		s.act(Replace, c.ID, ReasonSpecChanged, "%s runs an older spec", c.Name)
		return
	}
	if o := s.networkOwner; o != nil && c.NetworkOf != "" && (c.NetworkOf != o.ID || o.StartedAt.After(c.StartedAt)) {
		// The network it shared went with the owner's container, or was made anew
		// when the owner started again: a new container joins the owner's current one.
		s.fresh()
		s.act(Replace, c.ID, ReasonNetworkReplaced, "%s shares the network of %s, which was replaced or started again (network_mode %s)",
			c.Name, o.Name, s.svc.NetworkMode)
		return
	}
	switch c.State {
	case runtime.Created:
		s.act(Start, c.ID, ReasonNotStarted, "%s was created but not started", c.Name)
	case runtime.Exited, runtime.Dead:
		s.exited(c)
	case runtime.Running:
		s.noteReady(c)
		if hl := s.health[c.ID]; hl.Sick {
			s.sick(c, hl)
		} else if hl.Suspect {
			s.standby(c, hl)
		}
	case runtime.Paused:
		// Thawing keeps the process and its memory, and takes milliseconds; a
		// replacement would take seconds and lose both. Not a crash: no backoff.
		s.act(Unpause, c.ID, ReasonPaused, "%s was paused outside tend: it answers nothing and its checks cannot run; unpausing", c.Name)
	}
	// Running is the goal. Restarting and removing are the engine's doing and
	// end in an event that wakes the planner again.
}

// engineSlack: the engine stops containers on its way down, and its event
// stream may break a little after the first of them.
const engineSlack = 2 * time.Second

// stoppedByEngine tells an exit that happened while the engine was down.
func (s *slotPlanner) stoppedByEngine(c *runtime.Container) (Span, bool) {
	for _, d := range s.engineDown {
		if !c.FinishedAt.IsZero() && !c.FinishedAt.Before(d.From.Add(-engineSlack)) && !c.FinishedAt.After(d.To) {
			return d, true
		}
	}
	return Span{}, false
}

// fresh forgets the slot's container: a new one is about to be made from the current spec.
func (s *slotPlanner) fresh() {
	s.history.Container, s.history.Node = "", ""
	s.history.Settled, s.history.ReadyRun = time.Time{}, time.Time{}
}

func (s *slotPlanner) missing(depsReady func() (bool, string)) {
	h := s.history
	switch {
	case h.Done:
		return // a finished job stays finished
	case h.GaveUp:
		s.wait(time.Time{}, "gave up after %s; `tend up` tries again", restarts(len(h.Streak)))
		return
	case h.Container != "" && h.Node != "" && h.Node != s.node:
		s.fresh()
		s.act(Create, "", ReasonMoved, "placed here; its container %s ran on %s", short(h.Container), h.Node)
		return
	case h.Container != "":
		s.fresh()
		s.act(Create, "", ReasonMissing, "container %s was removed outside tend", short(h.Container))
		return
	}
	if ok, why := depsReady(); !ok {
		s.wait(time.Time{}, "waiting for %s", why)
		return
	}
	s.act(Create, "", ReasonNew, "replica %d of %d", s.key.Slot, s.svc.Replicas)
}

// exited applies the restart policy to a stopped container.
func (s *slotPlanner) exited(c *runtime.Container) {
	h := &s.history
	if !h.Settled.IsZero() && runOf(c).Equal(h.Settled) {
		if h.GaveUp {
			s.wait(time.Time{}, "gave up after %s; `tend up` tries again", restarts(len(h.Streak)))
		}
		return // this exit was already settled
	}
	how := exitText(c)
	p := s.svc.Restart
	if down, ok := s.stoppedByEngine(c); ok && p.Condition != spec.RestartNone {
		// Whatever its code (a program that exits 0 on SIGTERM too), the
		// engine ended it: not a crash, no backoff, no completed job.
		h.Streak = nil
		h.Restarts++
		h.GaveUp = false
		s.act(Restart, c.ID, ReasonEngineDown, "%s while the engine was unreachable (%s to %s): stopped by the engine, not a crash; restarting at once",
			how, down.From.Format("15:04:05.000"), down.To.Format("15:04:05.000"))
		return
	}
	if p.Condition == spec.RestartNone || (p.Condition == spec.RestartOnFailure && c.ExitCode == 0) {
		h.Settled, h.Done = runOf(c), true
		s.act(Settle, c.ID, ReasonCompleted, "%s; restart condition is %s", how, p.Condition)
		return
	}
	sig, outside, note := s.killedAfterHealthyRun(c)
	if outside {
		// Not a crash: the streak ends, and this restart neither waits nor
		// counts toward max_attempts (see kill.go).
		h.Streak = nil
		h.Restarts++
		h.GaveUp = false
		s.act(Restart, c.ID, ReasonExited, "%s: killed from outside (signal %d) after a healthy run; not counted as a crash, restarting at once",
			how, sig)
		return
	}
	how += note
	b := s.svc.Tend.Backoff
	// A restart at or after this exit failed to start (FinishedAt stays as it
	// was): the long run was already counted, and counting it again at every
	// pass would restart without backoff.
	retried := len(h.Streak) > 0 && !h.Streak[len(h.Streak)-1].Before(c.FinishedAt)
	if !retried && !c.StartedAt.IsZero() && c.FinishedAt.Sub(c.StartedAt) >= b.ResetAfter {
		h.Streak = nil // it ran long enough: this crash starts a new streak
	}
	if n := attemptsInWindow(h.Streak, p.Window, s.now); p.MaxAttempts > 0 && n >= p.MaxAttempts {
		h.Settled, h.GaveUp = runOf(c), true
		s.act(Settle, c.ID, ReasonMaxAttempts, "%s; gave up after %s%s (max_attempts %d)",
			how, restarts(n), windowText(p.Window), p.MaxAttempts)
		return
	}
	n := len(h.Streak)
	due := c.FinishedAt
	if n > 0 && h.Streak[n-1].After(due) {
		due = h.Streak[n-1] // a restart that failed to start leaves FinishedAt as it was
	}
	delay := Backoff(p, b, n, s.key.String())
	due = due.Add(delay)
	if s.now.Before(due) {
		s.wait(due, "%s; restart %d in %s", how, n+1, due.Sub(s.now).Round(time.Millisecond))
		return
	}
	h.Streak = append(slices.Clip(h.Streak), s.now)
	if len(h.Streak) > streakCap {
		h.Streak = h.Streak[len(h.Streak)-streakCap:]
	}
	h.Restarts++
	h.GaveUp = false
	s.act(Restart, c.ID, ReasonExited, "%s; restart %d of this streak (backoff %s)", how, n+1, delay.Round(time.Millisecond))
}

// runOf identifies the run that ended by its start time, which the engine
// keeps exactly; the exit time, when tend learns it from the die event rather
// than by asking, is a few milliseconds late.
func runOf(c *runtime.Container) time.Time {
	if c.StartedAt.IsZero() {
		return c.FinishedAt
	}
	return c.StartedAt
}

// Backoff is the wait before the next restart of a streak that has had n
// restarts: none for the first, then max(Initial, Delay) doubling up to Max,
// with ±10% jitter drawn from seed so replicas of one service spread out while
// the plan stays a pure function.
func Backoff(p spec.RestartPolicy, b spec.Backoff, n int, seed string) time.Duration {
	if n == 0 {
		return 0
	}
	d := max(b.Initial, p.Delay)
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	f := fnv.New32a()
	fmt.Fprintf(f, "%s#%d", seed, n)
	jitter := float64(f.Sum32()%2001)/10000 - 0.1 // [-0.1, +0.1]
	d += time.Duration(float64(d) * jitter)
	return min(d, b.Max)
}

func attemptsInWindow(streak []time.Time, window time.Duration, now time.Time) int {
	if window <= 0 {
		return len(streak)
	}
	n := 0
	for _, t := range streak {
		if now.Sub(t) < window {
			n++
		}
	}
	return n
}

func restarts(n int) string {
	if n == 1 {
		return "1 restart"
	}
	return fmt.Sprintf("%d restarts", n)
}

func windowText(w time.Duration) string {
	if w <= 0 {
		return ""
	}
	return " within " + w.String()
}

func exitText(c *runtime.Container) string {
	if c.StartedAt.IsZero() || c.FinishedAt.Before(c.StartedAt) {
		return fmt.Sprintf("exited with code %d", c.ExitCode)
	}
	return fmt.Sprintf("exited with code %d after %s", c.ExitCode, c.FinishedAt.Sub(c.StartedAt).Round(time.Millisecond))
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// networkOwner is the running replica 1 of the service whose network svc shares
// (network_mode service:NAME), or nil.
func networkOwner(p *spec.Project, svc *spec.Service, slots map[SlotKey][]runtime.Container) *runtime.Container {
	name, ok := strings.CutPrefix(svc.NetworkMode, "service:")
	if !ok {
		return nil
	}
	owner, ok := p.Service(name)
	if !ok {
		return nil
	}
	want := runtime.ReplicaName(p.Name, owner, 1)
	for i, c := range slots[SlotKey{Service: name, Slot: 1}] {
		if c.Name == want && c.State == runtime.Running {
			return &slots[SlotKey{Service: name, Slot: 1}][i]
		}
	}
	return nil
}
