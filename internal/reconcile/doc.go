// Package reconcile is tend's pure planner: given the desired project, the
// observed containers with what tend remembers of each slot, and the time, it
// returns the actions that move the stack toward its design, each with a named
// reason, and when it wants to be asked again.
//
// It does no I/O and never reads the clock: it must not import the Docker SDK,
// net, os/exec, the store or the clock package. Results of earlier actions come
// back as observed facts (containers and slot History).
//
//	plan := reconcile.Plan(project, reconcile.Observed{Containers: cs, History: h}, now)
//	// persist plan.History, then carry out plan.Actions and journal each
//	// wake again at plan.Wake, or earlier on an engine event
package reconcile
