// Package store keeps what tend must not forget: each project's desired state
// (versioned), each replica slot's restart memory, and the append-only journal
// of every action with its cause. Store is the one interface the supervisor and
// the API use; Bolt implements it on a bbolt file under the data directory
// (cluster mode adds an etcd implementation of the same interface).
//
// Every write is committed (and fsynced) before the call returns, so an action
// that is journaled is on disk before it is reported done.
package store
