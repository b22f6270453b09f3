package compose

import (
	"math"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/tend-sh/tend/internal/spec"
)

// rollout reads deploy.update_config and deploy.rollback_config. What the
// file leaves unset stays zero: tend's defaults (spec.Update.Applied) are
// applied where they are used, so a stored project follows them.
func rollout(sc types.ServiceConfig) spec.Rollout {
	if sc.Deploy == nil {
		return spec.Rollout{}
	}
	return spec.Rollout{Update: update(sc.Deploy.UpdateConfig), Rollback: update(sc.Deploy.RollbackConfig)}
}

func update(u *types.UpdateConfig) spec.Update {
	if u == nil {
		return spec.Update{}
	}
	out := spec.Update{Delay: time.Duration(u.Delay), FailureAction: u.FailureAction, Monitor: time.Duration(u.Monitor),
		MaxFailureRatio: math.Round(float64(u.MaxFailureRatio)*1e6) / 1e6, Order: u.Order}
	if u.Parallelism != nil {
		switch n := *u.Parallelism; {
		case n == 0:
			out.Parallelism = spec.AllAtOnce // compose's 0: every replica at once
		case n > spec.AllAtOnce:
			out.Parallelism = spec.AllAtOnce
		default:
			out.Parallelism = int(n)
		}
	}
	return out
}
