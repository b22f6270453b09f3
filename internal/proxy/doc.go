// Package proxy is tend's traffic adapter: it owns every published port of
// the stack, listens on it itself and balances over the service's ready
// replicas, so a replica that is starting, failing or being replaced gets no
// new requests while the others carry on.
//
// It owns the listeners, the connections to the replicas, passive outlier
// ejection, retries and the traffic statistics (Stats, and Prometheus
// metrics through Handler). It holds no policy about replicas' lives: which
// backends exist and which are ready come from the supervisor through Sync,
// and what the proxy notices (ejections) goes back as Events for the
// journal. It imports no other tend package but internal/clock (nor the
// Docker SDK): the supervisor translates its replicas into Routes. It reads
// time only through Config.Clock (internal/arch_test.go checks), so its
// waits, pauses and timeouts run on a fake clock in tests.
//
// # Use
//
//	m := proxy.NewManager(proxy.Config{Log: log, Clock: clock.Real{}, OnEvent: journal})
//	go m.Run(ctx)                // or under an errgroup; returns when ctx ends
//	err := m.Sync(routes)        // after every pass: the whole desired set, idempotent
//	m.Drain(ctx, containerID)    // before stopping a replica
//	stats := m.Stats()           // for `tend ps` and the autoscaler
//
// Sync may come before Run: ports are bound (and bind errors reported) at
// once and served when Run starts. A route on port 0 gets a port from the
// system; Addr tells which.
//
// # One exchange, three drivers
//
// A request's life is one state machine, the exchange (exchange.go): it
// is fed events with the time (start; an attempt answered, or failed with
// a kind: could not connect, could not write, broken after sending, no
// head in time, a bad answer; the client gone; a wait over; a streamed
// answer finished) and returns what to do next (send to a backend, on a
// new or a parked connection; wait until a time or a change of the pool;
// answer with tend's own error; deliver the backend's answer). It does no
// I/O and reads no clock. The rules below (Failures) and the bookkeeping
// (the backend's in-flight count, latency sample and failure streak, the
// statistics, the retry budget) are in it once; every attempt's outcome
// passes through one method (exchange.outcome), where a request breaker or
// a rollout gate belongs. The drivers carry bytes and turn what happened
// into events (classify, once): the event loops, fasthttp's handler
// (forward.go) and the RoundTripper under net/http's ReverseProxy
// (http.go) each run the same loop over the exchange's decisions. Tests of
// the rules are stories of events with no sockets (exchange_test.go).
//
// # HTTP and TCP
//
// An HTTP route's connections are served on event loops (loop.go and
// loopclient.go, loopupstream.go, loopwire.go, on evloop: epoll, one loop
// per CPU on a thread of its own, see loopCount and evloop's package
// comment for why not gnet): a request is parsed, sent where its exchange
// says over the loop's own keep-alive connections, and its answer read
// whole and written back, in the loops' callbacks, with no goroutine per
// connection; a request that must wait for a replica waits on the loop, on
// a timer and a waiter on the pool. The loops do the common case only: a
// request of known length up to 64 KiB, not an upgrade, and an answer up
// to 64 KiB (of known length, or chunked and all in). Anything else is
// handed over, with the bytes read so far, to goroutine servers, for the
// rest of the connection's life (server.go):
// fasthttp serves HTTP/1.x (forward.go, upstream.go: tend's synchronous
// client, larger bodies streamed both ways, chunked ones chunk by chunk),
// and net/http with httputil.ReverseProxy serves cleartext HTTP/2
// (recognised by its preface) and protocol upgrades (WebSocket), with the
// route itself as the Transport (http.go), which sends each attempt on
// the same client's connections (roundtrip.go). A large or unbounded answer is
// handed over after its head (stream.go): a goroutine streams it, at the
// client's pace, and passes a chunked one through as it is, trailer
// included.
//
// Why two goroutine-side stacks for HTTP/1.x, fasthttp's and net/http's
// (measured on 2026-12-07 with BenchmarkSlowPath, see bench/README.md):
// on what the loops hand over, net/http's server with the RoundTripper
// costs what fasthttp with tend's client does for large bodies (CPU per
// 1 MiB upload, medians of 3: 824 against 961 us with a length, 1059
// against 1018 us chunked), but 1.4x fasthttp's per small request on a
// connection handed over (61 against 44 us), and a connection
// handed over stays with its stack for the rest of its life: a keep-alive
// client that uploaded once. So fasthttp stays until a connection handed
// over for one request comes back to the loops once it is answered, as
// one whose large answer was streamed does (stream.go); then net/http
// alone could serve the rest, and forward.go and upstream.go's idle pool
// (which stream.go shares) could go.
//
// On both HTTP/1.x paths the response head has its own deadline (a timer
// on the clock, which cuts the read), a small answer is read whole before
// the client sees any of it (so a replica dying mid-answer is a bad
// answer: a failed attempt, retried like any other), and a client that
// leaves while its request waits is noticed and the exchange cut (at once
// on the loops; after a second's wait on fasthttp's path, whose connection
// is watched from then on).
//
// Why: with a goroutine per connection Go reads before it waits and
// wakes a goroutine per readiness; net/http's server, ReverseProxy and
// Transport cost 85-140 us of CPU per proxied request here, fasthttp with
// the synchronous client 31-40 us, nginx about 30 us, and on a 2-CPU host
// the proxy's CPU is taken from the replicas. The loops make the system
// calls nginx makes (two reads, two writes per request) and cost about as
// much CPU (bench/README.md, bench/traffic). The loops keep to their
// threads: a loop that moved between threads at its pauses, as gnet's
// did, left the CPU idle while requests waited (bench/README.md,
// "Profiling the proxy by hand").
//
// The client's Host is kept; X-Forwarded-For, -Host and -Proto are set
// from the connection (tend is the edge, so forwarding headers the client
// sent are dropped), and hop-by-hop headers (and those Connection names)
// are not forwarded; a chunked answer's trailer is. Errors are short plain-text
// answers: 503 when no replica is ready, 502 when none answered, 504 when
// it did not answer within Config.ResponseTimeout.
//
// A route is HTTP, TCP, or Auto: a port nobody declared, which is what
// almost every compose file publishes. An HTTP or Auto route's connections
// are accepted on the loops themselves (accept.go, evloop.Listen); a TCP
// route's by a goroutine. An Auto route tells each connection by who speaks
// first (sniff.go): a client whose first
// line is an HTTP/1.x request line (HTTP/2's preface is one) goes to the
// route's HTTP server, anything else is TCP, and so is a backend that speaks
// first (SMTP, MySQL). The bytes are peeked, never read, so a connection
// reaches the loops as it came. A backend is dialled at once for a client
// that has not spoken yet (a server-first protocol waits for nothing),
// except on a port whose clients have always spoken first, where the
// client gets 50 ms to do so before (fresh HTTP connections would each cost
// their backend an empty one). On the loop: a client whose request line is
// in when it is accepted is a loop client at once; on a port whose clients
// have always spoken first a silent one is peeked at on the loop for those
// 50 ms (a loop timer); every other connection goes to a goroutine, which
// does the rest as before. Measured with bench/soak on 2026-12-07
// (bench/README.md): accepting by goroutine and moving HTTP clients to the
// loops afterwards, fresh-connection clients got 0.62x nginx's requests;
// accepted on the loops, 0.84x.
//
// A TCP connection (tcp.go) is spliced to a backend both ways, passing a
// half-close on, with no idle timeout. Until a byte has passed either way,
// a backend that refuses, or accepts and then closes or resets (a replica
// killed as the client connected), is replaced by another within the hold,
// all of them again every connectPause when every one refused; with none,
// the client is closed with a FIN, its bytes read first so it gets no reset.
//
// # Balancing
//
// Requests go to the eligible backends (ready, not draining, not ejected)
// in turn, except that the backend whose turn it is gives the request to
// another drawn at random when its load is more than twice that one's
// (plus 50 µs). A backend's load is its latency estimate: an exponentially
// weighted moving average (weight 0.3) of the time to response headers
// (TCP: to connect); a failure counts as a 1 s sample. A backend skipped as
// slower gets one request all the same once its latest sample is 250 ms
// old, for a fresh one: one slow for a moment is back within that, one
// that stays slow gets about four requests a second. The estimate also
// decays toward zero with a half-life of 5 s while it gets no samples. In HTTP mode, a backend with requests
// in flight that has not answered for over 50 ms has that silence as its
// load, so a replica that hangs is passed over from then on, long before
// its requests time out (those it got in the 50 ms wait for it: the price
// of not steering on the shorter waits for a CPU that every replica on a
// busy host has).
//
// Why turns and not the cheaper of two random choices by latency times
// requests in flight (the balancer from 2026-11-27, 0988168, until
// 55b74b1 the same day), nor least outstanding requests: on a
// host whose CPUs the replicas share with the proxy and the clients, the
// replica that answers fastest is the one that has a CPU at the moment.
// Both of those balancers send it more, load concentrates on one replica,
// and when that one is descheduled its many requests wait together: more
// throughput, a worse tail. Measured against nginx (round robin) over the
// same three replicas, 8 s wrk runs alternating, 8 rounds (bench/README.md,
// "Balancing"): two random choices 1.29x nginx's requests at 1.78x its
// p99; turns alone 0.95x and 1.04x; turns skipping a clearly slower
// replica 1.16x and 0.78x. The skip keeps what the latency term was for: a
// replica slowed by a bug, a GC storm or a noisy neighbour gets less,
// while replicas alike share evenly. Retries and stale resends, which must
// avoid the replicas tried, take the less loaded of two drawn at random
// from the rest. The random draws come from a source of the pool's own
// (a seeded one in tests). Limits: the estimate is per route, not shared between a
// service's ports; it measures the time to the first byte, so a replica
// slow at streaming large bodies is not seen as slow.
//
// # Failures
//
// Passive outlier ejection: Config.EjectAfter (5) consecutive failures — a
// 5xx response, a failed connection, a timeout — take a backend out of
// rotation for Config.EjectFor (10 s) times the number of ejections in a row,
// at most Config.EjectMax (5 min). At most half of a route's ready backends
// are ejected at once, so the last one never is. A readmitted backend is on
// probation: its next failure ejects it again at once; a success ends the
// probation, and a backend that stays in rotation for EjectMax starts its
// count afresh.
// An ejected backend is still the last resort: a request or a retry that
// finds no other eligible backend goes to one that is ejected but ready
// (a replica ejected while it restarted is often fine again long before
// its ejection ends, while the ones in rotation may be failing).
// A backend that hangs (stall.go: requests wait on it, it answers none) is
// ejected whatever the share, is no last resort, and the GETs waiting on
// it are cut and retried elsewhere when another backend is in rotation,
// else when it is drained.
//
// Retries (exchange.go): an attempt that could not connect, or could not
// write its request, is sent once more to another backend (one not tried
// yet), whatever the method (nothing reached the backend); one whose
// connection broke after sending, or whose answer was bad or cut short,
// only when the method is idempotent (GET, HEAD, OPTIONS and
// Route.Idempotent), and so is one answered with 502 or 503, but only to a
// backend ready now: otherwise that answer stands. A timeout (504) is
// never retried: the backend may still be working on it (one cut because
// its backend hangs is, when idempotent). At most three
// attempts, the third only after a refused connection (maxAttempts). A
// request body is kept in memory for that only when its length is known
// and at most 64 KiB; larger or streamed bodies go on new connections and
// are never retried. Retries spend a per-service budget: over the last
// 10 s, at most 20 % of the requests plus 3 per second, so a struggling
// service is never hit with a storm of retries; a retry of a refused
// connection is free (counted all the same). A request that finds no
// backend ready waits for one within Config.Hold since it came (then
// 503), and so does a retry that finds no other ready (the others
// restarting; then 502). When every backend tried refused the connection
// (all restarting at once), the request reached none, so it is tried
// again on any after 25 ms, and so on within the hold.
//
// A reused keep-alive connection that breaks before any answer (the
// backend closed it while idle, or died) costs a new connection, not a
// failure, if nothing reached the backend or the method is idempotent: to
// another backend when one is ready, the same one otherwise (pool.afterStale
// says why); once per attempt, since a new connection cannot be stale.
// Any other request is sent on a parked connection only once the socket
// says the backend has not closed it (idleConns.get).
// A client that leaves is no backend's failure: the attempt counts as 499.
//
// Draining: Drain takes a backend out of rotation at once and waits for its
// requests in flight. A backend removed by Sync also stops getting new
// requests at once while its requests in flight finish.
//
// # Isolation
//
// A route the supervisor marks Isolated (its service quarantined) answers
// each HTTP request at once with the service's Fallback, at the exchange's
// start and in place of any hold, and closes TCP connections at once (an
// Auto port first gives the client clientFirstWait to show it speaks
// HTTP). Each HTTP service also has a request breaker (internal/breaker, a
// pure machine under the service's lock): the exchange asks it at start,
// tells it the first attempt's outcome, and answers with the fallback
// while it is open; its transitions go out as Events (breaker-open,
// breaker-close). isolation.go has both.
//
// # Statistics
//
// The hot path updates only atomics: per-replica counters, a Prometheus
// histogram and a ring of per-second slots of log-scale latency buckets,
// from which Stats computes rates and percentiles over the last 10 s.
package proxy
