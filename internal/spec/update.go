package spec

import (
	"fmt"
	"time"
)

// Update is deploy.update_config (or deploy.rollback_config): how a service
// moves to a new spec, replica by replica. The zero value means tend's
// defaults (a project stored before these keys existed).
type Update struct {
	// Parallelism is how many replicas are replaced at once; 0: the default, 1.
	// Compose's parallelism 0 (all at once) is stored as AllAtOnce.
	Parallelism int `json:"parallelism,omitempty"`
	// Delay is the wait between a step's end (its monitor period over) and the next step.
	Delay time.Duration `json:"delay,omitempty"`
	// FailureAction is what a failed step does: rollback (the default of
	// update_config), pause, or continue (the default of rollback_config).
	FailureAction string `json:"failure_action,omitempty"`
	// Monitor is how long the new replicas of a step are watched, once
	// ready, before the next step; 0: DefaultMonitor.
	Monitor time.Duration `json:"monitor,omitempty"`
	// MaxFailureRatio is the share of the service's replicas whose new
	// replica may fail before the failure action is taken; 0: none may.
	MaxFailureRatio float64 `json:"max_failure_ratio,omitempty"`
	// Order is start-first (the default: the new replica is ready before the
	// old one drains and stops) or stop-first.
	Order string `json:"order,omitempty"`
}

// Failure actions and orders of an Update.
const (
	ActionRollback = "rollback"
	ActionPause    = "pause"
	ActionContinue = "continue"
	StartFirst     = "start-first"
	StopFirst      = "stop-first"
)

// AllAtOnce is compose's parallelism 0: every replica in one step.
const AllAtOnce = 1 << 30

// Defaults of an Update where the file says nothing.
const (
	// DefaultMonitor is the watch over each step's new replicas (Swarm's 5s):
	// long enough for the proxy's figures of the new replica to show.
	DefaultMonitor = 5 * time.Second
	// ReadyDeadline is how long a new replica may take to become ready
	// before the step counts as failed.
	ReadyDeadline = 30 * time.Second
)

// Rollout is a service's update and rollback settings.
type Rollout struct {
	Update   Update `json:"update,omitzero"`
	Rollback Update `json:"rollback,omitzero"`
}

// Applied is u with tend's defaults filled in; rollback says it is a
// rollback_config (whose failure action defaults to continue).
func (u Update) Applied(rollback bool) Update {
	if u.Parallelism <= 0 {
		u.Parallelism = 1
	}
	if u.Monitor <= 0 {
		u.Monitor = DefaultMonitor
	}
	if u.FailureAction == "" {
		u.FailureAction = ActionRollback
		if rollback {
			u.FailureAction = ActionContinue
		}
	}
	if u.Order == "" {
		u.Order = StartFirst
	}
	return u
}

// check validates an update_config or rollback_config: the key at fault and why, or "".
func (u Update) check(rollback bool) (string, string) {
	switch u.FailureAction {
	case "", ActionPause, ActionContinue:
	case ActionRollback:
		if rollback {
			return "failure_action", "rollback cannot roll back a rollback; want pause or continue"
		}
	default:
		return "failure_action", fmt.Sprintf("want rollback, pause or continue (got %q)", u.FailureAction)
	}
	switch u.Order {
	case "", StartFirst, StopFirst:
	default:
		return "order", fmt.Sprintf("want start-first or stop-first (got %q)", u.Order)
	}
	switch {
	case u.MaxFailureRatio < 0 || u.MaxFailureRatio > 1:
		return "max_failure_ratio", fmt.Sprintf("want 0 to 1 (got %g)", u.MaxFailureRatio)
	case u.Parallelism < 0:
		return "parallelism", fmt.Sprintf("must be 0 or more (got %d)", u.Parallelism)
	case u.Delay < 0:
		return "delay", fmt.Sprintf("must not be negative (got %s)", u.Delay)
	case u.Monitor < 0:
		return "monitor", fmt.Sprintf("must not be negative (got %s)", u.Monitor)
	}
	return "", ""
}

// checkRollout validates a service's update and rollback settings.
func checkRollout(_ *Project, svc *Service) *Error {
	if key, msg := svc.Rollout.Update.check(false); msg != "" {
		return errorf(svc.Name, "deploy.update_config."+key, "%s", msg)
	}
	if key, msg := svc.Rollout.Rollback.check(true); msg != "" {
		return errorf(svc.Name, "deploy.rollback_config."+key, "%s", msg)
	}
	return nil
}
