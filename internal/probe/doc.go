// Package probe runs tend's liveness and readiness probes (spec.Probe) and
// turns their results into verdicts.
//
// It owns three things:
//
//   - Check: one HTTP, TCP or exec check against a container, from the host
//     to the container's address (exec runs inside it through the runtime).
//   - State.Observe: the pure threshold rule. It takes each result with its
//     time and does no I/O and reads no clock, so a table of results is its test.
//   - Prober: the long-running component that checks each watched container
//     on its probe's interval and keeps the current verdicts.
//
// It does not decide what a verdict means (replacing a failing replica,
// taking it out of rotation): the supervisor and the planner do that.
// It must not import the Docker SDK or internal/runtime/docker: exec probes
// go through the Execer interface, which runtime.Runtime satisfies. It reads
// time for waiting only through its clock.Clock.
//
//	p := probe.New(probe.Config{Exec: rt, Clock: clock.Real{}, OnChange: func(string) { s.Poke() }, Log: log})
//	go p.Run(ctx) // blocks until ctx ends
//	p.Sync([]probe.Watch{{
//		Target:    probe.Target{ID: c.ID, IP: c.IP, StartedAt: c.StartedAt},
//		Liveness:  svc.Tend.Liveness,
//		Readiness: svc.Tend.ReadinessProbe(),
//	}}) // after each observation of the engine
//	h, ok := p.Status(c.ID) // h.Live.Status, h.Ready.Status
package probe
