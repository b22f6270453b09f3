package compose

import (
	"github.com/tend-sh/tend/internal/spec"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// restartPolicy reads deploy.restart_policy, which wins, or else the restart key.
//
// With neither, tend restarts on any exit. That is not compose's default ("no"), on
// purpose: keeping a stack up is what tend is for, and a file written for plain
// compose rarely says restart: always for every service. A one-shot job says
// restart: "no" (or condition: none).
func restartPolicy(sc types.ServiceConfig) (spec.RestartPolicy, error) {
	if sc.Deploy != nil && sc.Deploy.RestartPolicy != nil {
		return deployRestart(sc.Name, sc.Deploy.RestartPolicy)
	}
	return restartKey(sc.Name, sc.Restart)
}

// deployRestart maps deploy.restart_policy; its condition defaults to any, as in compose.
func deployRestart(service string, rp *types.RestartPolicy) (spec.RestartPolicy, error) {
	out := spec.RestartPolicy{Condition: spec.Condition(rp.Condition)}
	switch out.Condition {
	case "":
		out.Condition = spec.RestartAny
	case spec.RestartAny, spec.RestartOnFailure, spec.RestartNone:
	default:
		return spec.RestartPolicy{}, errorf(service, "deploy.restart_policy.condition",
			"must be one of any, on-failure, none (got %q)", rp.Condition)
	}
	out.Delay = duration(rp.Delay)
	out.Window = duration(rp.Window)
	if rp.MaxAttempts != nil {
		out.MaxAttempts = int(min(*rp.MaxAttempts, uint64(maxAttempts)))
	}
	return out, nil
}

// maxAttempts caps max_attempts so that it fits an int anywhere; no one means more.
const maxAttempts = 1 << 30

// restartKey maps the engine-style restart key. unless-stopped is any: tend stops a
// service only by a planned action, never by a user's `docker stop` it should heal.
func restartKey(service, value string) (spec.RestartPolicy, error) {
	switch value {
	case "", types.RestartPolicyAlways, types.RestartPolicyUnlessStopped:
		return spec.RestartPolicy{Condition: spec.RestartAny}, nil
	case types.RestartPolicyNo:
		return spec.RestartPolicy{Condition: spec.RestartNone}, nil
	case types.RestartPolicyOnFailure:
		return spec.RestartPolicy{Condition: spec.RestartOnFailure}, nil
	}
	if n, ok := strings.CutPrefix(value, types.RestartPolicyOnFailure+":"); ok {
		attempts, err := strconv.Atoi(n)
		if err != nil || attempts < 0 || attempts > maxAttempts {
			return spec.RestartPolicy{}, errorf(service, "restart", "on-failure needs a count of 0 or more (got %q)", value)
		}
		return spec.RestartPolicy{Condition: spec.RestartOnFailure, MaxAttempts: attempts}, nil
	}
	return spec.RestartPolicy{}, errorf(service, "restart",
		"must be one of no, always, on-failure[:N], unless-stopped (got %q)", value)
}
