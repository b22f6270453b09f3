package spec

import "time"

// Quarantine is x-tend `quarantine`: when a service whose repairs keep
// failing is isolated (no restarts, out of rotation, callers answered with
// the Fallback at once), and how it is tried again half-open. The zero
// value means the defaults (a project stored before these keys existed).
type Quarantine struct {
	// After failed repairs (restarts, replacements) of the service's
	// replicas within Within, with no replica staying ready meanwhile,
	// quarantine it.
	After  int           `json:"after"`
	Within time.Duration `json:"within"`
	// Retry is the wait before the first half-open trial; it doubles after
	// each failed trial, up to RetryMax.
	Retry    time.Duration `json:"retry"`
	RetryMax time.Duration `json:"retry_max"`
	// Probation is how long a trial replica must stay ready to restore the service.
	Probation time.Duration `json:"probation"`
}

// Defaults of x-tend quarantine.
const (
	DefaultQuarantineAfter     = 5
	DefaultQuarantineWithin    = 2 * time.Minute
	DefaultQuarantineRetry     = 30 * time.Second
	DefaultQuarantineRetryMax  = 10 * time.Minute
	DefaultQuarantineProbation = 30 * time.Second
)

// Budget is the quarantine as it applies to svc: the defaults for what is
// unset, and the compose restart policy's max_attempts and window as its
// After and Within where they are set (one budget, not two that disagree).
func (svc *Service) Budget() Quarantine {
	q := svc.Tend.Quarantine
	if q.After <= 0 {
		q.After = DefaultQuarantineAfter
	}
	if q.Within <= 0 {
		q.Within = DefaultQuarantineWithin
	}
	if q.Retry <= 0 {
		q.Retry = DefaultQuarantineRetry
	}
	if q.RetryMax <= 0 {
		q.RetryMax = DefaultQuarantineRetryMax
	}
	q.RetryMax = max(q.RetryMax, q.Retry)
	if q.Probation <= 0 {
		q.Probation = DefaultQuarantineProbation
	}
	if n := svc.Restart.MaxAttempts; n > 0 {
		q.After = n
	}
	if w := svc.Restart.Window; w > 0 {
		q.Within = w
	}
	return q
}

// Fallback is x-tend `fallback`: the answer HTTP callers get while the
// service is quarantined or its request breaker is open.
type Fallback struct {
	Status  int               `json:"status"` // default 503
	Body    string            `json:"body,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// DefaultFallbackStatus is the fallback's status when none is set.
const DefaultFallbackStatus = 503

// Breaker is x-tend `breaker`: the proxy's request-level circuit breaker
// of an HTTP service. The zero value means the defaults.
type Breaker struct {
	// Off turns the breaker off (`breaker: off`).
	Off bool `json:"off,omitempty"`
	// ErrorRatio of 5xx answers and connection failures, over at least
	// MinRequests requests within Window, opens it.
	ErrorRatio  float64       `json:"error_ratio"`
	MinRequests int           `json:"min_requests"`
	Window      time.Duration `json:"window"`
	// Latency, when set, opens it too when the p95 within Window is over it.
	Latency time.Duration `json:"latency,omitempty"`
	// Open is how long it fails fast before letting a few requests through.
	Open time.Duration `json:"open"`
}

// Defaults of x-tend breaker.
const (
	DefaultBreakerErrorRatio  = 0.5
	DefaultBreakerMinRequests = 20
	DefaultBreakerWindow      = 10 * time.Second
	DefaultBreakerOpen        = 5 * time.Second
)

// Effective is b with the defaults for what is unset.
func (b Breaker) Effective() Breaker {
	if b.ErrorRatio <= 0 {
		b.ErrorRatio = DefaultBreakerErrorRatio
	}
	if b.MinRequests <= 0 {
		b.MinRequests = DefaultBreakerMinRequests
	}
	if b.Window <= 0 {
		b.Window = DefaultBreakerWindow
	}
	if b.Open <= 0 {
		b.Open = DefaultBreakerOpen
	}
	return b
}
