// Package harness holds what tend's benchmarks share: a small Engine API client over the
// unix socket (standard library only: listing, inspecting, killing, the event stream,
// creating a container with an exec-form health check), the neighbour-cache reset that
// keeps a poller from stalling on a restarting container's address, the tend daemon's
// lifecycle and the replicas of a project it runs (their addresses, `tend ps`, waiting
// until they are settled), swarm mode set up and undone, the peer proxy nginx (started
// with a failover configuration, pointed at other replicas, stopped), closed-loop HTTP
// load of several client kinds (keep-alive, a connection per request, h2c) with each
// failure named by its kind, a watcher of which replica addresses answer, the start-up
// (Main, Preflight, PickPeers) and clean-up (SweepLeftovers, SweepTend, RemoveNetwork)
// every benchmark does alike, CPU accounting of processes, containers and the host (who
// had the CPUs during a run), and the statistics and table helpers that print results.
//
// It must not import tend's own packages: the benchmarks measure tend from the outside,
// through its binary, exactly as they measure its peers.
package harness
