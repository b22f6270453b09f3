// Package etcdstore is the Store of cluster mode: tend's desired state, slot
// memories, chosen counts, quarantines, rollouts and journal kept in the
// cluster's etcd, so losing a manager loses none of it. It has the semantics
// of store.Bolt, method by method (see Store for the few differences).
//
// Every record is its own key under Config.Prefix, so hosts that write
// different slots or services of one project never overwrite each other:
//
//	projects/<project>                     store.Record
//	versions/<project>/<%08d version>      spec.Project
//	slots/<project>/<service>/<slot>       reconcile.History
//	counts/<project>/<service>             store.Count
//	quarantine/<project>/<service>         quarantine.State
//	rollouts/<project>/<service>           rollout.State
//	journal/<%020d seq>                    store.Entry
//	seq/journal                            the last journal number given
//
// A read-modify-write (a new version, a mark, a journal number) is a
// transaction that compares the ModRevision it read and is retried when
// another host got there first.
//
// It imports the etcd client only, never the Docker SDK; it does not own the
// client (cmd wires the one internal/cluster makes). Use:
//
//	s, err := etcdstore.New(etcdstore.Config{Client: cli})
//	...
//	defer s.Close() // stops the journal watch; the client stays open
package etcdstore
