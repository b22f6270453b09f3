package spec

import "time"

// Autoscale is a service's `x-tend.autoscale` block: the bounds and targets
// tend scales the service between on its own. The count it chooses is kept
// apart from the spec (store.Count), so a later `tend up` moves only these.
type Autoscale struct {
	Min int `json:"min"` // default: deploy.replicas
	Max int `json:"max"` // required
	// Targets: the highest demand of those set wins. P95 and P99 are the
	// service's latency through tend's proxy; InFlight is requests in
	// flight per ready replica; CPU is cores per replica (0.8: 80 % of one).
	P95      time.Duration `json:"p95,omitempty"`
	P99      time.Duration `json:"p99,omitempty"`
	InFlight float64       `json:"in_flight,omitempty"`
	CPU      float64       `json:"cpu,omitempty"`
	// Tuning; the defaults below work on the demo untuned.
	Interval          time.Duration `json:"interval"`           // how often the figures are weighed
	UpStabilization   time.Duration `json:"up_stabilization"`   // demand must hold this long before a scale-out
	DownStabilization time.Duration `json:"down_stabilization"` // ... and this long before a scale-in
	MaxStep           int           `json:"max_step"`           // the most replicas added or removed at once
	Cooldown          time.Duration `json:"cooldown"`           // after a change, once its replicas are ready, before the next
}

// Defaults of the x-tend autoscale tuning keys.
const (
	DefaultScaleInterval          = time.Second
	DefaultScaleUpStabilization   = 2 * time.Second
	DefaultScaleDownStabilization = 15 * time.Second
	DefaultScaleMaxStep           = 4
	DefaultScaleCooldown          = 3 * time.Second
)

// HTTPTargets tells whether a target needs the proxy's HTTP figures.
func (a *Autoscale) HTTPTargets() bool { return a.P95 > 0 || a.P99 > 0 || a.InFlight > 0 }

func checkAutoscale(_ *Project, s *Service) *Error {
	a := s.Tend.Autoscale
	if a == nil {
		return nil
	}
	const key = ExtensionKey + ".autoscale"
	switch {
	case a.Min < 0:
		return errorf(s.Name, key+".min", "must be 0 or more (got %d)", a.Min)
	case a.Max < 1:
		return errorf(s.Name, key+".max", "required, 1 or more (got %d)", a.Max)
	case a.Max < a.Min:
		return errorf(s.Name, key+".max", "max %d is less than min %d", a.Max, a.Min)
	case a.P95 < 0 || a.P99 < 0 || a.InFlight < 0 || a.CPU < 0:
		return errorf(s.Name, key, "targets must not be negative")
	case !a.HTTPTargets() && a.CPU == 0:
		return errorf(s.Name, key, "no target: set p95, p99, in_flight or cpu")
	case a.Interval <= 0 || a.UpStabilization < 0 || a.DownStabilization < 0 || a.Cooldown < 0:
		return errorf(s.Name, key, "interval must be positive, stabilizations and cooldown not negative")
	case a.MaxStep < 1:
		return errorf(s.Name, key+".max_step", "must be 1 or more (got %d)", a.MaxStep)
	}
	if a.HTTPTargets() && !hasTCPPort(s) {
		return errorf(s.Name, key, "p95, p99 and in_flight are measured by tend's proxy on a published tcp port, and the service publishes none (use cpu)")
	}
	return nil
}

func hasTCPPort(s *Service) bool {
	for _, p := range s.Ports {
		if p.Protocol == "tcp" {
			return true
		}
	}
	return false
}
