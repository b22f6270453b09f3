// Package harness holds what tend's benchmarks share: a small Engine API client over the
// unix socket (standard library only: listing, inspecting, the event stream, creating a
// container with an exec-form health check), the neighbour-cache reset that keeps a poller
// from stalling on a restarting container's address, the tend daemon's lifecycle, swarm
// mode set up and undone, the start-up (Main, Preflight, PickPeers) and clean-up
// (SweepLeftovers, SweepTend, RemoveNetwork) every benchmark does alike, CPU accounting of
// processes, containers and the host (who had the CPUs during a run), and the statistics
// and table helpers that print results.
//
// It must not import tend's own packages: the benchmarks measure tend from the outside,
// through its binary, exactly as they measure its peers.
package harness
