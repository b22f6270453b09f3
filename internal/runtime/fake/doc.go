// Package fake is an in-memory runtime.Runtime for every test that needs no
// Docker engine. It keeps containers, networks and volumes in maps, records the
// calls it receives, and lets a test play the engine's part: make a process
// exit, remove a container behind tend's back, change its health, or fail the
// next call of a method.
//
// It imports no Docker SDK and reads no wall clock: container times come from
// the clock function the test sets (a fixed instant by default).
//
//	rt := fake.New()
//	rt.SetClock(clk.Now)                        // e.g. a clock.Fake
//	id, _ := rt.Create(ctx, p, svc, runtime.Replica{Slot: 1, Name: "demo-web-1"}) // state created
//	_ = rt.Start(ctx, id)                       // running
//	rt.Exit(id, 1)                              // exited with code 1, a "die" event
//	rt.FailNext(fake.MethodStart, errBoom)      // the next Start returns errBoom
//	id, _ = rt.Build(ctx, "demo-web", b, out)   // two lines of output, a new image ID for demo-web
//	rt.AddImage("base:1", "sha256:...")         // an image that exists without a build
//	calls := rt.Calls()                         // [{Create [demo web 1]} {Start [<id>]} ...]
//
// Behaviour follows the engine where tend relies on it: Create refuses a name
// in use (an errs.Conflict error); Start of a running container, and Stop or
// Remove of a missing one, are not errors; Start keeps the previous FinishedAt
// and resets the exit code; a started container with a health check is
// "starting" until SetHealth says otherwise.
package fake
