package compose

import (
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

func TestAutoscaleDefaults(t *testing.T) {
	s, err := loadService(t, "    ports: [\"18080:8080\"]\n    deploy: {replicas: 2}\n    x-tend:\n      autoscale: {max: 6, p95: 50ms, cpu: 80%}")
	if err != nil {
		t.Fatal(err)
	}
	want := &spec.Autoscale{Min: 2, Max: 6, P95: 50 * time.Millisecond, CPU: 0.8, Interval: spec.DefaultScaleInterval,
		UpStabilization: spec.DefaultScaleUpStabilization, DownStabilization: spec.DefaultScaleDownStabilization,
		MaxStep: spec.DefaultScaleMaxStep, Cooldown: spec.DefaultScaleCooldown}
	diff(t, "autoscale", s.Tend.Autoscale, want)
}

func TestAutoscaleKeys(t *testing.T) {
	s, err := loadService(t, "    ports: [\"18080:8080\"]\n    x-tend:\n      autoscale: {min: 1, max: 4, p99: 1s, in_flight: 8, interval: 2s, up_stabilization: 0s, down_stabilization: 1m, max_step: 1, cooldown: 5s}")
	if err != nil {
		t.Fatal(err)
	}
	want := &spec.Autoscale{Min: 1, Max: 4, P99: time.Second, InFlight: 8, Interval: 2 * time.Second,
		DownStabilization: time.Minute, MaxStep: 1, Cooldown: 5 * time.Second}
	diff(t, "autoscale", s.Tend.Autoscale, want)
}

func TestAutoscaleErrors(t *testing.T) {
	tests := []struct{ keys, want string }{
		{"    ports: [\"18080:8080\"]\n    x-tend:\n      autoscale: {p95: 50ms}", `service "app": x-tend.autoscale.max: required, 1 or more (got 0)`},
		{"    ports: [\"18080:8080\"]\n    x-tend:\n      autoscale: {min: 5, max: 3, p95: 50ms}", `service "app": x-tend.autoscale.max: max 3 is less than min 5`},
		{"    ports: [\"18080:8080\"]\n    x-tend:\n      autoscale: {max: 3}", `service "app": x-tend.autoscale: no target: set p95, p99, in_flight or cpu`},
		{"    x-tend:\n      autoscale: {max: 3, p95: 50ms}", `service "app": x-tend.autoscale: p95, p99 and in_flight are measured by tend's proxy on a published tcp port, and the service publishes none (use cpu)`},
		{"    ports: [\"18080:8080\"]\n    x-tend:\n      autoscale: {max: 3, p95: soon}", `service "app": x-tend.autoscale.p95: invalid duration "soon" (want e.g. 500ms or 1m30s)`},
		{"    ports: [\"18080:8080\"]\n    x-tend:\n      autoscale: {max: 3, p95: 50ms, p90: 1s}", `service "app": x-tend.autoscale: unknown key "p90"`},
		{"    ports: [\"18080:8080\"]\n    x-tend:\n      autoscale: {max: three, p95: 50ms}", `service "app": x-tend.autoscale.max: want a whole number (got three)`},
	}
	for _, tt := range tests {
		_, err := loadService(t, tt.keys)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "compose.yaml") {
			t.Errorf("%s:\n got %v\nwant %s (with the file)", tt.keys, err, tt.want)
		}
	}
}

func TestAutoscaleNoMinWithCPU(t *testing.T) {
	s, err := loadService(t, "    x-tend:\n      autoscale: {max: 3, cpu: 0.5}")
	if err != nil || s.Tend.Autoscale.Min != 1 || s.Tend.Autoscale.CPU != 0.5 {
		t.Fatalf("%v %+v", err, s.Tend.Autoscale)
	}
}
