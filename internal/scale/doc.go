// Package scale is tend's autoscaler: a pure planner that turns a service's
// figures (the proxy's latency and in-flight counts, the engine's CPU) into
// the replica count it should run, with the reason.
//
// Plan(autoscale, state, observed, now) returns a Decision: the count, a
// reason when the count changed (latency, in-flight, cpu, idle, no-effect,
// bounds), the figures it used, the planner's next State and when to be
// asked again. It does no I/O and reads no clock (internal/arch_test.go): the
// supervisor gathers the figures, keeps the State in the store (so a
// restarted tend keeps the count) and applies the count through the
// reconciler.
//
// The rules, in order:
//   - A held service (quarantined, rolling out) is not scaled.
//   - Nothing is decided while the last change's replicas start or stop, nor
//     for a cooldown after they are all ready, nor without figures.
//   - Each target gives a wanted count, as the HPA does: ceil(ready x
//     metric/target) when the metric is more than 10 % over its target. The
//     highest wins. Below target, latency asks for ceil(in-flight / capacity),
//     capacity being the most requests in flight per replica seen while
//     latency met its target; a service with no traffic asks for min (idle).
//   - Fast up, slow down: the count rises only when every wish over the up
//     stabilization was higher, to the lowest of them, and falls only when
//     every wish over the down stabilization was lower, to the highest of
//     them; by at most max_step replicas at once, within [min, max].
//   - A scale-out for latency aims at 80 % of the target (headroom): the
//     proxy's and the host's overhead do not shrink with replicas, and one
//     step should get under the target.
//   - Scale only where it helps (the no-effect rule). A scale-out for latency
//     is a trial: once its replicas are ready and the cooldown passed, the
//     planner compares requests in flight per ready replica and latency with
//     the figures before. Latency follows load when load per replica fell
//     by a quarter or more and latency fell by at least a third of that
//     share (or now meets its target), or when both rose (demand grew
//     during the trial). When load per replica moved by a
//     quarter or more and latency did not follow, at every evaluation over
//     the up stabilization (at least two intervals; the count holds
//     meanwhile: one noisy second is no picture), the replicas did not help
//     (a slow database, a lock, a fixed delay): the count goes back to what
//     it was, the decision says no-effect with the figures, and latency no
//     longer scales the service out until the picture changes: demand
//     (requests in flight) reaches half again what it was at the verdict,
//     latency meets its target, the spec changes, or a person runs `tend
//     scale SERVICE --auto`. Load that barely moved teaches nothing: the
//     trial is dropped. In-flight and CPU targets are not judged: more
//     replicas always spread them.
package scale
