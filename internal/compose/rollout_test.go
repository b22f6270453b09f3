package compose

import (
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

func TestLoadUpdateConfig(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want spec.Rollout
	}{
		{name: "neither: tend's defaults apply where used", keys: "", want: spec.Rollout{}},
		{name: "every key", keys: "    deploy:\n      update_config: {parallelism: 2, delay: 3s, failure_action: pause, monitor: 20s, max_failure_ratio: 0.3, order: stop-first}\n      rollback_config: {parallelism: 0, order: start-first}",
			want: spec.Rollout{Update: spec.Update{Parallelism: 2, Delay: 3 * time.Second, FailureAction: "pause", Monitor: 20 * time.Second, MaxFailureRatio: 0.3, Order: "stop-first"},
				Rollback: spec.Update{Parallelism: spec.AllAtOnce, Order: "start-first"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadService(t, tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			diff(t, "rollout", s.Rollout, tt.want)
		})
	}
	if got := (spec.Update{}).Applied(false); got != (spec.Update{Parallelism: 1, Monitor: spec.DefaultMonitor, FailureAction: "rollback", Order: "start-first"}) {
		t.Errorf("update defaults = %+v", got)
	}
	if got := (spec.Update{}).Applied(true).FailureAction; got != "continue" {
		t.Errorf("rollback failure_action default = %q, want continue", got)
	}
}

func TestLoadUpdateConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want string
	}{
		{name: "unknown action", keys: "    deploy:\n      update_config: {failure_action: retry}",
			want: `compose.yaml: service "app": deploy.update_config.failure_action: want rollback, pause or continue (got "retry")`},
		{name: "rollback of a rollback", keys: "    deploy:\n      rollback_config: {failure_action: rollback}",
			want: `compose.yaml: service "app": deploy.rollback_config.failure_action: rollback cannot roll back a rollback; want pause or continue`},
		{name: "order", keys: "    deploy:\n      update_config: {order: random}",
			want: `compose.yaml: service "app": deploy.update_config.order: value must be one of 'start-first', 'stop-first'`}, // compose-go's schema
		{name: "ratio", keys: "    deploy:\n      update_config: {max_failure_ratio: 2}",
			want: `compose.yaml: service "app": deploy.update_config.max_failure_ratio: want 0 to 1 (got 2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadService(t, tt.keys)
			wantError(t, err, tt.want)
		})
	}
}
