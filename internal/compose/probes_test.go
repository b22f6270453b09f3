package compose

import (
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

func TestLoadProbesAndLogRules(t *testing.T) {
	s, err := loadService(t, `    x-tend:
      liveness:
        http: {port: 8080, path: /health, status: 200-299, body: ok, headers: {Host: web.local}}
        interval: 1s
        failure_threshold: 2
      readiness:
        tcp: {port: 8080}
        start_grace: 3s
      logs:
        - pattern: "FATAL|panic:"
        - {pattern: "slow query", count: 5, window: 10s, action: notify, cooldown: 0s}`)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "liveness", *s.Tend.Liveness, spec.Probe{
		HTTP:     &spec.HTTPCheck{Port: 8080, Path: "/health", StatusMin: 200, StatusMax: 299, Body: "ok", Headers: map[string]string{"Host": "web.local"}},
		Interval: time.Second, Timeout: spec.DefaultProbeTimeout, FailureThreshold: 2, SuccessThreshold: 1,
	})
	diff(t, "readiness", *s.Tend.Readiness, spec.Probe{
		TCP:      &spec.TCPCheck{Port: 8080},
		Interval: spec.DefaultProbeInterval, Timeout: spec.DefaultProbeTimeout, FailureThreshold: 3, SuccessThreshold: 1,
		StartGrace: 3 * time.Second,
	})
	diff(t, "logs", s.Tend.Logs, []spec.LogRule{
		{Pattern: "FATAL|panic:", Count: 1, Window: time.Minute, Action: spec.LogReplace, Cooldown: time.Minute},
		{Pattern: "slow query", Count: 5, Window: 10 * time.Second, Action: spec.LogNotify, Cooldown: 0},
	})
}

func TestReadinessDefaultsToLiveness(t *testing.T) {
	s, err := loadService(t, `    x-tend:
      liveness:
        exec: ["/demo", "-probe", "http://127.0.0.1:8080/health"]`)
	if err != nil {
		t.Fatal(err)
	}
	if s.Tend.Readiness != nil || s.Tend.ReadinessProbe() != s.Tend.Liveness {
		t.Errorf("readiness: got %+v, want the liveness probe", s.Tend.ReadinessProbe())
	}
	diff(t, "exec", s.Tend.Liveness.Exec, []string{"/demo", "-probe", "http://127.0.0.1:8080/health"})
}
