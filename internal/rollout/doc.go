// Package rollout is the pure planner of rolling updates: given a service's
// desired spec, the specs its project's stored versions hold, its containers
// with the verdicts of tend's checks and the proxy's figures per slot, the
// rollout's stored State and the time, Decide returns the next step: which
// replacement to start next to an old replica (start-first) or in its place
// (stop-first), which takes over, which slots the reconciler keeps on their
// older spec meanwhile, and whether to roll back. A new replica that exits,
// falls sick, is not ready by spec.ReadyDeadline, or answers clearly worse
// than the old replicas through the proxy fails its step; the failure action
// (rollback by default) follows.
//
// A rollback is a rollout too: Decide asks its caller to store the previous
// spec as the service's desired state (Plan.Revert), and rolls to it with
// rollback_config. Because the step reached is in State and every replica
// carries its spec hash, a restarted tend continues where it stopped.
//
// Like reconcile it does no I/O and never reads the clock: it must not
// import the Docker SDK, net, os/exec, the store or the clock package.
//
//	plan := rollout.Decide(observed, stored, now)
//	// store plan.Revert (a new version) first, then plan.State; plan the
//	// reconciler with plan.Pins, drop its actions on plan.Owned slots (all
//	// of them when plan.Hold), carry out plan.Actions and journal plan.Events
package rollout
