package supervisor

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/logwatch"
	"github.com/tend-sh/tend/internal/probe"
	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// condemned is a replica a log rule with action replace fired on. Unlike a
// probe's verdict it is an event, not a level: it holds until the replica is gone.
type condemned struct {
	detail string
}

// watch tells the prober and the log watcher which containers to check: the
// running replicas of every project's services that have probes or log rules.
func (s *Supervisor) watch(projects []*spec.Project, byProject map[string][]runtime.Container) {
	var probes []probe.Watch
	var logs []logwatch.Target
	for _, p := range projects {
		for _, c := range byProject[p.Name] {
			svc, ok := p.Service(c.Service)
			if !ok || c.State != runtime.Running {
				continue // a replica on an older spec is checked too: it serves until replaced
			}
			if live, ready := svc.Tend.Liveness, readinessProbe(svc); live != nil || ready != nil {
				probes = append(probes, probe.Watch{Target: probe.Target{ID: c.ID, IP: c.IP, StartedAt: c.StartedAt},
					Liveness: live, Readiness: ready})
			}
			if len(svc.Tend.Logs) > 0 {
				logs = append(logs, logwatch.Target{ID: c.ID, Rules: svc.Tend.Logs, StartedAt: c.StartedAt,
					Key: slotID(p.Name, c.Service, c.Slot)})
			}
		}
	}
	s.probes.Sync(probes)
	s.logs.Sync(logs)
}

// readinessProbe is the probe that says whether a replica of svc may take
// traffic: its own (x-tend readiness, else liveness); else, for a service
// that publishes a TCP port and has no health check, a TCP connect to that
// port, so the proxy never sends requests to a process that does not listen
// yet; nil when the engine's health check or the running state decides.
func readinessProbe(svc *spec.Service) *spec.Probe {
	if p := svc.Tend.ReadinessProbe(); p != nil {
		return p
	}
	if svc.Healthcheck != nil && !svc.Healthcheck.Disable {
		return nil
	}
	for _, port := range svc.Ports {
		if port.Protocol == "tcp" {
			return &spec.Probe{TCP: &spec.TCPCheck{Port: port.ContainerPort}, Interval: 2 * time.Second, Timeout: time.Second,
				FailureThreshold: 2, SuccessThreshold: 1}
		}
	}
	return nil
}

// verdicts is what tend's checks say of a project's running containers, for the planner.
func (s *Supervisor) verdicts(p *spec.Project, cs []runtime.Container) map[string]reconcile.Health {
	out := map[string]reconcile.Health{}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.judgeHung(p, cs)
	for _, c := range cs {
		svc, ok := p.Service(c.Service)
		switch {
		case !ok:
		case c.State == runtime.Running:
			out[c.ID] = s.verdict(svc, c)
		case !c.StartedAt.IsZero() && s.readyRun[c.ID].Equal(c.StartedAt):
			out[c.ID] = reconcile.Health{ReadyRun: c.StartedAt} // it ran ready, then ended
		}
	}
	return out
}

// verdict weighs one running container's evidence. The caller holds s.mu.
func (s *Supervisor) verdict(svc *spec.Service, c runtime.Container) reconcile.Health {
	h, _ := s.weigh(svc, c)
	return h
}

// weigh is verdict, and says why a check that timed out was not believed
// (empty when none was). The caller holds s.mu.
//
// A check that timed out while the replica answered requests through the
// proxy is inconclusive: on a loaded host the engine starts exec checks
// late and every replica's check times out at once, and believing them
// takes every replica out of rotation and starts replacements, which loads
// the host more. A hung replica answers nothing, so it is not excused.
func (s *Supervisor) weigh(svc *spec.Service, c runtime.Container) (h reconcile.Health, excuse string) {
	ph, probed := s.probes.Status(c.ID)
	// An image's own HEALTHCHECK counts as the file's: the engine reports its health alike.
	hasCheck := (svc.Healthcheck != nil && !svc.Healthcheck.Disable) || (svc.Healthcheck == nil && c.Health != "")
	health, failing := c.Health, c.HealthFailing
	if hasCheck && (health == runtime.HealthUnhealthy || failing > 0) && engineTimedOut(c.HealthOutput) {
		if ago, ok := s.answered(c.ID, checkTimeout(svc.Healthcheck)); ok {
			health, failing = runtime.HealthHealthy, 0
			excuse = fmt.Sprintf("health check timed out (%s) but it answered a request %s ago", orNone(c.HealthOutput), ago.Round(time.Millisecond))
		}
	}
	live, ready := ph.Live, ph.Ready
	for _, r := range []struct {
		st *probe.State
		p  *spec.Probe
	}{{&live, svc.Tend.Liveness}, {&ready, readinessProbe(svc)}} {
		// Unknown: it never passed in this run, so it never took traffic to vouch for it.
		if r.p == nil || r.st.Status == probe.Unknown || r.st.Failures == 0 || !strings.HasPrefix(r.st.Last.Output, probe.TimeoutPrefix) {
			continue
		}
		if ago, ok := s.answered(c.ID, probeTimeout(r.p)); ok {
			excuse = fmt.Sprintf("probe check %s but it answered a request %s ago", r.st.Last.Output, ago.Round(time.Millisecond))
			r.st.Status, r.st.Failures = probe.Passing, 0
		}
	}
	switch {
	case readinessProbe(svc) != nil:
		h.Ready = probed && ready.Status == probe.Passing
	case hasCheck:
		h.Ready = health == runtime.HealthHealthy
	default:
		h.Ready = true
	}
	if h.Ready && !c.StartedAt.IsZero() {
		s.readyRun[c.ID] = c.StartedAt
	}
	h.ReadyRun = s.readyRun[c.ID]
	hung := s.hung[c.ID]
	if hung {
		h.Ready = false // it answers no one
	}
	switch m, marked := s.condemned[c.ID]; {
	case hung:
		// Checks may pass (a stopped process's kernel completes a TCP
		// handshake; an HTTP check may hit a path that does not hang): the
		// requests it took and left waiting are the evidence.
		h.Sick, h.Cause = true, reconcile.ReasonHung
		h.Detail = "requests through tend's proxy waited on it and it answered none; out of rotation"
	case marked:
		h.Sick, h.Cause, h.Detail = true, reconcile.ReasonLogMatch, m.detail
	case svc.Tend.Liveness != nil && probed && live.Status == probe.Failing:
		h.Sick, h.Cause = true, reconcile.ReasonLiveness
		h.Detail = fmt.Sprintf("liveness probe failed %s: %s", times(live.Failures), live.Last.Output)
	case svc.Tend.Liveness != nil && probed && live.Status == probe.Passing && live.Failures > 0 && svc.Tend.Liveness.FailureThreshold > 1:
		// It was alive and has begun to fail: a standby starts now, so a
		// replacement is ready when (if) the threshold is reached.
		h.Suspect = true
		h.Detail = fmt.Sprintf("liveness probe failed %d of %d: %s", live.Failures, svc.Tend.Liveness.FailureThreshold, live.Last.Output)
	case hasCheck && health == runtime.HealthHealthy && failing > 0 && checkRetries(svc.Healthcheck) > 1:
		// The engine's check has begun to fail: the same standby as for a
		// liveness probe, before the engine calls it unhealthy.
		h.Suspect = true
		h.Detail = fmt.Sprintf("health check failed %d of %d in a row", failing, checkRetries(svc.Healthcheck))
	case health == runtime.HealthUnhealthy:
		h.Sick, h.Cause = true, reconcile.ReasonUnhealthy
		h.Detail = "health check failed: " + orNone(c.HealthOutput)
	}
	return h, excuse
}

// hungFine is how recently a replica must have answered to vouch that its
// service works while a sibling hangs.
const hungFine = 10 * time.Second

// judgeHung decides which of p's replicas the proxy found hung are
// replaced. A hang is the replica's own when a sibling answers meanwhile;
// when none does, it may be what they all wait on (a database, say): the
// first replacement is tried, and if the service still answers no one, no
// more are (no restart storm; the breaker and the fallback answer callers)
// until a replica of it answers again. The caller holds s.mu.
func (s *Supervisor) judgeHung(p *spec.Project, cs []runtime.Container) {
	if s.cfg.Traffic == nil {
		return
	}
	hung := map[string][]string{}
	fine := map[string]bool{}
	for _, c := range cs {
		if c.State != runtime.Running {
			continue
		}
		switch {
		case s.hung[c.ID]:
			// To be replaced: that stands until it answers (ProxyEvent) or
			// is gone, whatever the proxy's routes meanwhile.
		case s.cfg.Traffic.Hung(c.ID):
			hung[c.Service] = append(hung[c.Service], c.ID)
		default:
			delete(s.hung, c.ID)
			if ago, ok := s.cfg.Traffic.Answered(c.ID); ok && ago < hungFine {
				fine[c.Service] = true
			}
		}
	}
	for _, svc := range p.Services {
		key := p.Name + "/" + svc.Name
		ids := hung[svc.Name]
		switch {
		case fine[svc.Name] && len(ids) == 0:
			delete(s.hungSpent, key) // it answers again (a replica waiting to be replaced may still hang)
		case len(ids) == 0:
		case fine[svc.Name] || !s.hungSpent[key]:
			for _, id := range ids {
				s.hung[id] = true
			}
			if !fine[svc.Name] {
				s.hungSpent[key] = true
			}
		default:
			for _, id := range ids {
				s.hung[id] = false // not replaced; the proxy keeps it out of rotation, and readmits it on probation
			}
		}
	}
}

// isHung reports whether the proxy found the replica hung (and it has not
// answered since).
func (s *Supervisor) isHung(id string) bool {
	s.mu.Lock()
	_, hung := s.hung[id]
	s.mu.Unlock()
	return hung || s.cfg.Traffic != nil && s.cfg.Traffic.Hung(id)
}

// answered says how long ago the replica answered a request through the
// proxy, when that is within within: evidence it is not hung.
func (s *Supervisor) answered(id string, within time.Duration) (time.Duration, bool) {
	if s.cfg.Traffic == nil {
		return 0, false
	}
	ago, ok := s.cfg.Traffic.Answered(id)
	return ago, ok && ago < within
}

// engineTimedOut is whether the engine's health check output says it timed out.
func engineTimedOut(out string) bool { return strings.HasPrefix(out, "Health check exceeded timeout") }

// checkTimeout is how long the engine gives one health check (30 s by its
// default), at most 10 s: a replica that answered nothing for that long
// while its checks time out gets no more benefit of the doubt.
func checkTimeout(h *spec.Healthcheck) time.Duration {
	if h != nil && h.Timeout > 0 {
		return min(h.Timeout, 10*time.Second)
	}
	return 10 * time.Second
}

func probeTimeout(p *spec.Probe) time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return spec.DefaultProbeTimeout
}

// noteReadiness journals a replica leaving rotation and coming back, once it
// has been ready: a replica that is starting is not news.
//
// It weighs the evidence afresh, under the lock: both the pass and the
// prober's news call it, and a stale verdict would journal a flap that
// did not happen.
func (s *Supervisor) noteReadiness(p *spec.Project, cs []runtime.Container) {
	var entries []store.Entry
	s.mu.Lock()
	for _, c := range cs {
		svc, ok := p.Service(c.Service)
		if !ok || c.State != runtime.Running {
			delete(s.ready, c.ID) // not running: its next run starts unready, which is no news
			continue
		}
		hl, excuse := s.weigh(svc, c)
		if (excuse != "") != s.excused[c.ID] {
			s.excused[c.ID] = excuse != ""
			if excuse != "" {
				entries = append(entries, store.Entry{Project: p.Name, Service: c.Service, Slot: c.Slot, Container: short(c.ID),
					Action: "inconclusive", Reason: "answering", Message: excuse + "; kept in rotation, not replaced"})
			}
		}
		was, seen := s.ready[c.ID]
		if !seen && !hl.Ready {
			continue
		}
		s.ready[c.ID] = hl.Ready
		if !seen || was == hl.Ready {
			continue
		}
		e := store.Entry{Project: p.Name, Service: c.Service, Slot: c.Slot, Container: short(c.ID), Reason: "readiness"}
		if hl.Ready {
			e.Action, e.Message = "ready", c.Name+" is ready again; back in rotation"
		} else {
			e.Action, e.Message = "unready", c.Name+" is not ready; out of rotation: "+s.readinessEvidence(p, c)
		}
		entries = append(entries, e)
	}
	s.mu.Unlock()
	if len(entries) > 0 {
		s.journal(entries...)
	}
}

// onProbeChange is the prober's news about a container: the proxy and the
// journal learn it at once, the planner at the pass it asks for.
func (s *Supervisor) onProbeChange(id string) {
	s.retraffic()
	s.mu.Lock()
	var p *spec.Project
	var c runtime.Container
	for _, sp := range s.seen {
		for _, sc := range sp.cs {
			if sc.ID == id {
				p, c = sp.p, sc
			}
		}
	}
	s.mu.Unlock()
	if p != nil {
		s.noteReadiness(p, []runtime.Container{c})
	}
	s.Poke()
}

// readinessEvidence says why a replica is not ready. The caller holds s.mu.
func (s *Supervisor) readinessEvidence(p *spec.Project, c runtime.Container) string {
	svc, _ := p.Service(c.Service)
	if svc != nil && readinessProbe(svc) != nil {
		if ph, ok := s.probes.Status(c.ID); ok {
			return fmt.Sprintf("readiness probe failed %s: %s", times(ph.Ready.Failures), ph.Ready.Last.Output)
		}
	}
	return "health check: " + orNone(c.HealthOutput)
}

// forgetGone drops what is remembered of containers that no longer exist.
func (s *Supervisor) forgetGone(all []runtime.Container) {
	live := make(map[string]bool, len(all))
	for _, c := range all {
		live[c.ID] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.condemned {
		if !live[id] {
			delete(s.condemned, id)
		}
	}
	for id := range s.ready {
		if !live[id] {
			delete(s.ready, id)
		}
	}
	for id := range s.readyRun {
		if !live[id] {
			delete(s.readyRun, id)
		}
	}
	for id := range s.excused {
		if !live[id] {
			delete(s.excused, id)
		}
	}
	for id := range s.hung {
		if !live[id] {
			delete(s.hung, id)
		}
	}
	s.cpu.forget(live)
}

// onLogMatch acts on a log rule that fired: it condemns the replica, restarts
// the service's dependents, or only journals, as the rule says.
func (s *Supervisor) onLogMatch(m logwatch.Match) {
	project, service, slot, ok := parseSlotID(m.Key)
	if !ok {
		return
	}
	detail := fmt.Sprintf("log rule %d matched %s: %s", m.Rule+1, times(m.Count), m.Line)
	e := store.Entry{Project: project, Service: service, Slot: slot, Container: short(m.Container),
		Action: "log-match", Reason: string(m.Action), Message: detail}
	s.journal(e)
	switch m.Action {
	case spec.LogReplace:
		s.mu.Lock()
		s.condemned[m.Container] = condemned{detail: detail}
		s.mu.Unlock()
		s.Poke()
	case spec.LogRestartDependents:
		s.startDependents(project, service, fmt.Sprintf("%s/%d logged a match of rule %d", service, slot, m.Rule+1), true)
	}
}

func parseSlotID(id string) (project, service string, slot int, ok bool) {
	parts := strings.Split(id, "/")
	if len(parts) != 3 {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(parts[2])
	return parts[0], parts[1], n, err == nil
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return strconv.Itoa(n) + " times"
}

func orNone(s string) string {
	if s == "" {
		return "(no output)"
	}
	return s
}

// checkRetries is the failures in a row that make the engine call a
// container unhealthy: compose's retries, 3 by default as in the engine (and
// for an image's own HEALTHCHECK, h nil, whose retries tend does not read).
func checkRetries(h *spec.Healthcheck) int {
	if h != nil && h.Retries > 0 {
		return h.Retries
	}
	return 3
}
