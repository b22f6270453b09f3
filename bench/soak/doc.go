// Command soak asks whether a request is lost while replicas die, for the compose file
// users actually write: a service of three demo replicas published as a plain
// "PORT:8080" (short syntax, no app_protocol, no x-tend), with a compose healthcheck in
// exec form. tend's proxy serves that port; nginx, configured for failover as a user
// would (see harness.NginxConfig), balances over the same containers' addresses.
//
// One run: clients of each kind (keep-alive HTTP/1.1, a new connection per request,
// HTTP/2 with prior knowledge) send GET / in a closed loop, every Nth request a POST,
// for the run's length, while a random running replica is killed (SIGKILL through the
// Engine API) every interval, the first half an interval in; tend restarts the killed
// containers. Every request is recorded: when, how long, and how it failed (reset, EOF,
// timeout, refused, HTTP 5xx by code, ...). A POST is not idempotent, so no proxy may
// resend one that reached a replica: a failed POST that was in flight at a kill is
// counted apart from one that was not (the harness cannot see which replica a request
// reached, so "in flight at a kill" is the most a POST can be excused).
//
// Part one: N rounds (-rounds, default 20) with a kill every 2 s for 12 s; part two: one
// round (-fast-rounds) with a kill every 500 ms. Rounds run on one daemon, 3 s apart
// (-gap), each run once every replica is ready again. In part two each run waits until
// every replica has also run 11 s (-fast-settle): at a kill every 500 ms tend's
// crash-loop backoff keeps replicas down for seconds, and the backoff one run leaves
// would otherwise fall on the next, the other peer's.
//
// Failed requests are not all alike: a proxy that answers 502 at once is asked again at
// once by a closed-loop client, one whose requests time out is asked every 2 s, so
// failed counts overstate the first. Each table also gives the clients' time without
// service (from a failed request to the end of the next successful one), which does not
// depend on how fast failures come back.
//
// Alternating, not at the same time: in each round tend and nginx each get one run of
// their own, over the same replicas, with the same kill times and the same seeded
// choice of victims (the same replica whenever the same replicas are running), the order
// alternating from round to round so that neither always runs right after the other's
// kills. Driving both at once would give them the very same kills, but on two CPUs each
// would get about half the machine, and each proxy's clients would load the replicas the
// other relies on: a proxy's figures would depend on the other's. Alternating gives each
// the whole machine and the same schedule; what differs between the two runs of a round
// is the engine's timing (how long a restart takes), which each run prints.
//
// nginx is given the replicas' container addresses. A container the engine restarts
// keeps its address, but tend may recreate a replica, and a restarted one can come back
// with another free address of the network: before each nginx run the benchmark
// compares the replicas' addresses with nginx's upstream and, if they differ, rewrites
// the config and reloads nginx (what a user's config generator would do), and says so.
// Addresses that change during a run are not followed (a user's nginx would not follow
// them either); the run's notes say when that happened.
//
// Usage (as root; see bench/README.md; bench/traffic/tools.sh installs nginx):
//
//	go run ./bench/soak -tend /tmp/tend
//	go run ./bench/soak -tend /tmp/tend -rounds 2 -json /tmp/soak.json
package main
