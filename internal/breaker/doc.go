// Package breaker is the request-level circuit breaker of one service, as
// a pure state machine: the proxy's exchange asks it before a request
// (Allow) and tells it how the request went (Record, Abandon), each with
// the time as monotonic nanoseconds; it answers whether to send the request
// or answer with the fallback, and which transitions to journal.
//
//	closed ──error ratio or p95 over the limit, with enough requests──► open
//	  ▲                                                                   │ after Open
//	  └──── Trials trial requests succeed ──── half-open ◄────────────────┘
//	                                              └── a trial fails or hangs ──► open
//
// It never opens on a service with fewer than MinRequests requests in the
// window. An answered request is slow when the replica that answered took
// longer than Latency (time the proxy held it for a replica, or spent on
// one it then found hung, is not the service's). A request still in flight
// for longer than Latency counts as slow at once, so a dependency that
// hangs trips the breaker before any of its requests ends. It reads no
// clock and does no I/O (internal/arch_test.go);
// it is not safe for concurrent use: the proxy holds a lock around it.
//
// Why not sony/gobreaker: its counts reset at fixed intervals instead of
// sliding, it has no latency trip and cannot see requests that hang, it
// reads the wall clock itself (the proxy runs on an injected clock, and its
// tests on a fake one), and its shape is a wrapper around the call, where
// the exchange is a state machine fed with events.
package breaker
