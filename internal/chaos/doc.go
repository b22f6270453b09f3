// Package chaos is the pure part of `tend chaos`: which faults a command
// line asks for, when each is due, which replica it strikes, and the report
// built from what was observed afterwards (tend's status and its journal).
//
// It does no I/O and reads no clock: cmd/tend injects the faults through the
// Docker adapter (internal/runtime/docker), polls the daemon's API and hands
// the answers here as plain values with the time they were read. A Book is
// the ledger of one run: Inject records a fault, Observe a poll of the
// replicas, Journal new journal entries; Report says, per fault, what tend
// did and when the replica was ready again, and the stack's state after.
//
// It must not import the store, the supervisor or the Docker SDK
// (internal/arch_test.go): its inputs are its own small types.
package chaos
