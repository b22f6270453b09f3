package spec

import "time"

// Probe is an x-tend liveness or readiness check. Exactly one of HTTP, TCP and
// Exec is set. tend runs it itself, from the host against the replica's
// address (HTTP, TCP) or inside the replica (Exec).
type Probe struct {
	HTTP *HTTPCheck `json:"http,omitempty"`
	TCP  *TCPCheck  `json:"tcp,omitempty"`
	Exec []string   `json:"exec,omitempty"` // a command run in the container, no shell: exit 0 passes

	Interval time.Duration `json:"interval"` // between the start of one check and the next
	Timeout  time.Duration `json:"timeout"`  // a check that takes longer fails
	// FailureThreshold checks failing in a row turn a passing (or new) replica
	// failing; SuccessThreshold passing in a row turn it passing again.
	FailureThreshold int `json:"failure_threshold"`
	SuccessThreshold int `json:"success_threshold"`
	// StartGrace is how long after its start a replica's failures do not count.
	StartGrace time.Duration `json:"start_grace,omitempty"`
}

// HTTPCheck passes when a GET of Path on Port answers with a status in
// [StatusMin, StatusMax] and, if Body is set, a body that contains it.
type HTTPCheck struct {
	Port      uint16            `json:"port"`
	Path      string            `json:"path"`
	StatusMin int               `json:"status_min"`
	StatusMax int               `json:"status_max"`
	Body      string            `json:"body,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// TCPCheck passes when a connection to Port is accepted.
type TCPCheck struct {
	Port uint16 `json:"port"`
}

// Defaults of a probe's timing, between Kubernetes' (10 s x 3) and what a
// self-healing tool wants: a dead replica is found in about 15 s.
const (
	DefaultProbeInterval         = 5 * time.Second
	DefaultProbeTimeout          = 2 * time.Second
	DefaultProbeFailureThreshold = 3
	DefaultProbeSuccessThreshold = 1
)

// LogAction is what a log rule does when it fires.
type LogAction string

const (
	LogReplace           LogAction = "replace"            // replace the replica, as a failed liveness probe does
	LogRestartDependents LogAction = "restart-dependents" // restart the services that depend on this one
	LogNotify            LogAction = "notify"             // only journal it
)

// LogRule fires when Count lines of a replica's output match Pattern within
// Window; after it fired, the same replica's matches are ignored for Cooldown.
type LogRule struct {
	Pattern  string        `json:"pattern"` // a Go regular expression (RE2 syntax)
	Count    int           `json:"count"`
	Window   time.Duration `json:"window"`
	Action   LogAction     `json:"action"`
	Cooldown time.Duration `json:"cooldown"`
}

// Defaults of a log rule.
const (
	DefaultLogCount    = 1
	DefaultLogWindow   = time.Minute
	DefaultLogCooldown = time.Minute
)

// ReadinessProbe is the probe that gates traffic: the readiness probe, or the
// liveness probe when there is none; nil when the service has neither.
func (e Extension) ReadinessProbe() *Probe {
	if e.Readiness != nil {
		return e.Readiness
	}
	return e.Liveness
}
