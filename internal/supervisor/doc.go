// Package supervisor is tend's loop: observe the engine, ask the planner, carry
// out its actions, journal them. It is the only place where the runtime, the
// store and the clock meet; policy stays in internal/reconcile.
//
// Engine events only wake the loop; every pass observes the whole state, and a
// periodic resync covers events lost while the stream reconnects. Actions run
// in the background, one at a time per slot, so a slow graceful stop never
// holds up a crash restart elsewhere.
//
//	s := supervisor.New(supervisor.Config{Runtime: rt, Store: st, Clock: clock.Real{}, Log: log})
//	go s.Run(ctx)      // blocks until ctx ends
//	s.Up(ctx, project) // from the API
package supervisor
