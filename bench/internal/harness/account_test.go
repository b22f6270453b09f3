package harness

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseProxyCounters(t *testing.T) {
	text := `# HELP tend_proxy_requests_total Requests
# TYPE tend_proxy_requests_total counter
tend_proxy_requests_total{code="200",project="tendbench-traffic",replica="web/1",service="web"} 100
tend_proxy_requests_total{code="502",project="tendbench-traffic",replica="web/2",service="web"} 7
tend_proxy_requests_total{code="503",project="tendbench-traffic",replica="",service="web"} 2
tend_proxy_requests_total{code="502",project="other",replica="web/2",service="web"} 50
tend_proxy_retries_total{project="tendbench-traffic",service="web"} 6
tend_proxy_ejections_total{project="tendbench-traffic",replica="web/2",service="web"} 1
tend_proxy_ejections_total{project="tendbench-traffic",replica="web/3",service="web"} 0
tend_proxy_tcp_connections_total{project="tendbench-traffic",replica="web/3",service="web"} 12
`
	got := ParseProxyCounters(text, "tendbench-traffic")
	want := ProxyCounters{Attempts: 107, Retries: 6, NoReplica: 2, TCPConns: 12,
		Non2xx: map[string]int64{"web/2": 7}, Ejections: map[string]int64{"web/2": 1, "web/3": 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseProxyCounters:\n got %+v\nwant %+v", got, want)
	}
	d := got.Minus(ParseProxyCounters("", "tendbench-traffic"))
	if ByReplica(d.Ejections) != "1 (web/2 1)" || ByReplica(map[string]int64{}) != "0" {
		t.Errorf("ByReplica: %q", ByReplica(d.Ejections))
	}
}

func TestFailedAttempts(t *testing.T) {
	log := `time=2026-11-27T10:00:00Z level=DEBUG msg="proxy: attempt failed" replica=web/2 err="dial tcp 172.20.0.3:8080: connect: connection refused"
time=2026-11-27T10:00:01Z level=DEBUG msg="proxy: attempt failed" replica=web/2 err="dial tcp 172.20.0.3:8080: connect: connection refused"
time=2026-11-27T10:00:01Z level=INFO msg="something else" replica=web/1
`
	got := Counts(FailedAttempts(log))
	if want := "2 x web/2: dial tcp ADDR: connect: connection refused"; got != want {
		t.Errorf("FailedAttempts = %q, want %q", got, want)
	}
}

func TestPlainCompose(t *testing.T) {
	got := PlainCompose("test", "tend-demo:dev", ":18301", 3)
	for _, want := range []string{`ports: ["18301:8080"]`, "deploy: {replicas: 3}", `test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]`} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	if _, body, _ := strings.Cut(got, "\n"); strings.Contains(body, "x-tend") || strings.Contains(body, "app_protocol") {
		t.Errorf("not plain:\n%s", got)
	}
	if got := PlainCompose("test", "i", "127.0.0.1:18301", 1); !strings.Contains(got, `ports: ["127.0.0.1:18301:8080"]`) {
		t.Errorf("with a host:\n%s", got)
	}
}
