// Package access decides who may reach the daemon over TCP: the API tokens
// (kept as hashes in a file of the data directory) and the TLS certificate of
// the HTTPS listener (given, or made once and kept next to the tokens).
//
// The unix socket needs neither: its file mode (0600) is its access control.
// A token's secret exists only in the answer to its creation; from then on
// tend holds its SHA-256 and compares hashes in constant time. Nothing here
// logs: callers decide what to say, and never say a secret.
//
// It imports no other package of tend's but errs.
package access
