package compose

import (
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

func TestParseIsolation(t *testing.T) {
	ext, err := parseExtension("pay", map[string]any{
		"quarantine": map[string]any{"after": 3, "within": "1m", "retry": "10s", "retry_max": "5m", "probation": "20s"},
		"fallback":   map[string]any{"status": 503, "body": "payments are down, try later", "headers": map[string]any{"content-type": "text/plain"}},
		"breaker":    map[string]any{"error_ratio": 0.25, "min_requests": 10, "window": "5s", "latency": "300ms", "open": "2s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Quarantine{After: 3, Within: time.Minute, Retry: 10 * time.Second, RetryMax: 5 * time.Minute, Probation: 20 * time.Second}
	if ext.Quarantine != want {
		t.Errorf("quarantine = %+v, want %+v", ext.Quarantine, want)
	}
	if ext.Fallback.Status != 503 || ext.Fallback.Body != "payments are down, try later" || ext.Fallback.Headers["Content-Type"] != "text/plain" {
		t.Errorf("fallback = %+v", ext.Fallback)
	}
	wantB := spec.Breaker{ErrorRatio: 0.25, MinRequests: 10, Window: 5 * time.Second, Latency: 300 * time.Millisecond, Open: 2 * time.Second}
	if ext.Breaker != wantB {
		t.Errorf("breaker = %+v, want %+v", ext.Breaker, wantB)
	}
	if ext, _ := parseExtension("pay", map[string]any{"breaker": "off"}); !ext.Breaker.Off {
		t.Error("breaker: off is not off")
	}
	if b := (&spec.Service{}).Budget(); b.After != 5 || b.Within != 2*time.Minute || b.Retry != 30*time.Second ||
		b.RetryMax != 10*time.Minute || b.Probation != 30*time.Second {
		t.Errorf("default budget = %+v", b)
	}
}

func TestParseIsolationErrors(t *testing.T) {
	cases := []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"quarantine": map[string]any{"after": 0}}, `x-tend.quarantine.after: want a whole number of at least 1`},
		{map[string]any{"quarantine": map[string]any{"retries": 3}}, `x-tend.quarantine: unknown key "retries"`},
		{map[string]any{"quarantine": map[string]any{"retry": "1h", "retry_max": "1m"}}, `retry 1h0m0s is greater than retry_max 1m0s`},
		{map[string]any{"fallback": map[string]any{"status": 99}}, `x-tend.fallback.status: want an HTTP status from 200 to 599`},
		{map[string]any{"fallback": map[string]any{"headers": map[string]any{"X-A": "a\nb"}}}, `x-tend.fallback.headers.X-A`},
		{map[string]any{"breaker": map[string]any{"error_ratio": 2}}, `x-tend.breaker.error_ratio: want a number above 0 and at most 1`},
		{map[string]any{"breaker": map[string]any{"open": "0s"}}, `x-tend.breaker.open: want a duration above zero`},
	}
	for _, c := range cases {
		_, err := parseExtension("pay", c.raw)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `"pay"`) {
			t.Errorf("%v: error %v, want it to name the service and say %q", c.raw, err, c.want)
		}
	}
}
