// Package quarantine is tend's pure service-quarantine machine: given one
// service's budget (spec.Service.Budget), what tend remembers of its
// quarantine (State), what the supervisor sees of its slots (Observed) and
// the time, Step returns the next State, the change to journal (quarantine,
// trial, restore) with its reason, and when to be asked again.
//
//	closed ──budget spent, none ready──► quarantined ──retry──► trial
//	  ▲                                      ▲                    │
//	  │                                      └──trial failed──────┤ (retry doubles)
//	  └──────────trial slot ready for probation, new spec, heal───┘
//
// While a service is quarantined the supervisor carries out no repair on
// it, keeps its broken containers stopped, and the proxy answers its callers
// with the fallback at once; during a trial only the trial slot is repaired.
// It sits next to the reconciler and, like it, does no I/O and never reads
// the clock: it must not import the Docker SDK, net, os/exec, the store or
// the clock package (internal/arch_test.go).
package quarantine
