package compose

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// parseAutoscale reads x-tend.autoscale from the service's whole x-tend
// block; nil when absent. min defaults to deploy.replicas; the checks of
// the combination (max < min, no target, ...) are spec's, so a Project from
// the API gets them too.
func parseAutoscale(service string, ext any, replicas int) (*spec.Autoscale, error) {
	block, _ := ext.(map[string]any)
	raw, ok := block["autoscale"]
	if !ok {
		return nil, nil
	}
	const key = spec.ExtensionKey + ".autoscale"
	m, err := mapping(service, key, raw, "min", "max", "p95", "p99", "in_flight", "cpu",
		"interval", "up_stabilization", "down_stabilization", "max_step", "cooldown")
	if err != nil {
		return nil, err
	}
	a := &spec.Autoscale{Min: replicas, Interval: spec.DefaultScaleInterval,
		UpStabilization: spec.DefaultScaleUpStabilization, DownStabilization: spec.DefaultScaleDownStabilization,
		MaxStep: spec.DefaultScaleMaxStep, Cooldown: spec.DefaultScaleCooldown}
	ints := []struct {
		name string
		dst  *int
	}{{"min", &a.Min}, {"max", &a.Max}, {"max_step", &a.MaxStep}}
	for _, f := range ints {
		if v, set := m[f.name]; set {
			n, ok := v.(int)
			if !ok {
				return nil, errorf(service, key+"."+f.name, "want a whole number (got %s)", shown(v))
			}
			*f.dst = n
		}
	}
	durations := []struct {
		name string
		dst  *time.Duration
	}{{"p95", &a.P95}, {"p99", &a.P99}, {"interval", &a.Interval}, {"up_stabilization", &a.UpStabilization},
		{"down_stabilization", &a.DownStabilization}, {"cooldown", &a.Cooldown}}
	for _, f := range durations {
		if v, set := m[f.name]; set {
			if *f.dst, err = parseDuration(v); err != nil {
				return nil, errorf(service, key+"."+f.name, "%v", err)
			}
		}
	}
	if v, set := m["in_flight"]; set {
		if a.InFlight, err = number(v); err != nil || a.InFlight <= 0 {
			return nil, errorf(service, key+".in_flight", "want requests in flight per replica, a number above 0 (got %s)", shown(v))
		}
	}
	if v, set := m["cpu"]; set {
		if a.CPU, err = cpuShare(v); err != nil || a.CPU <= 0 {
			return nil, errorf(service, key+".cpu", "want cores per replica, e.g. 0.8 or 80%% (got %s)", shown(v))
		}
	}
	return a, nil
}

func number(v any) (float64, error) {
	switch n := v.(type) {
	case int:
		return float64(n), nil
	case float64:
		return n, nil
	case string:
		return strconv.ParseFloat(n, 64)
	}
	return 0, fmt.Errorf("not a number")
}

// cpuShare reads a CPU target as cores (0.8) or a percentage of one ("80%").
func cpuShare(v any) (float64, error) {
	if s, ok := v.(string); ok && strings.HasSuffix(s, "%") {
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		return f / 100, err
	}
	return number(v)
}
