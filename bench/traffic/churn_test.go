package main

import (
	"reflect"
	"testing"
	"time"
)

func TestParseCounters(t *testing.T) {
	text := `# HELP tend_proxy_requests_total Requests
# TYPE tend_proxy_requests_total counter
tend_proxy_requests_total{code="200",project="tendbench-traffic",replica="web/1",service="web"} 100
tend_proxy_requests_total{code="502",project="tendbench-traffic",replica="web/2",service="web"} 7
tend_proxy_requests_total{code="503",project="tendbench-traffic",replica="",service="web"} 2
tend_proxy_requests_total{code="502",project="other",replica="web/2",service="web"} 50
tend_proxy_retries_total{project="tendbench-traffic",service="web"} 6
tend_proxy_ejections_total{project="tendbench-traffic",replica="web/2",service="web"} 1
tend_proxy_ejections_total{project="tendbench-traffic",replica="web/3",service="web"} 0
`
	got := parseCounters(text)
	want := proxyCounters{attempts: 107, retries: 6, noReplica: 2,
		non2xx: map[string]int64{"web/2": 7}, ejections: map[string]int64{"web/2": 1, "web/3": 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseCounters:\n got %+v\nwant %+v", got, want)
	}
	d := got.minus(parseCounters(""))
	if byReplica(d.ejections) != "1 (web/2 1)" || byReplica(map[string]int64{}) != "0" {
		t.Errorf("byReplica: %q", byReplica(d.ejections))
	}
}

func TestUpstreamErrors(t *testing.T) {
	log := `2026/11/27 00:20:01 [error] 1234#1234: *5 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://172.20.0.2:8080/", host: "127.0.0.1:18090"
2026/11/27 00:20:01 [warn] 1234#1234: *5 upstream server temporarily disabled while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1"
2026/11/27 00:20:02 [error] 1235#1235: *9 no live upstreams while connecting to upstream, client: 127.0.0.1
2026/11/27 00:20:02 [error] 1235#1235: *10 no live upstreams while connecting to upstream, client: 127.0.0.1
`
	got := upstreamErrors(log)
	want := map[string]int{
		"error: connect() failed (111: Connection refused)": 1,
		"warn: upstream server temporarily disabled":        1,
		"error: no live upstreams":                          2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("upstreamErrors = %v, want %v", got, want)
	}
}

func TestIntersect(t *testing.T) {
	ms := func(a, b int) span {
		return span{time.Duration(a) * time.Millisecond, time.Duration(b) * time.Millisecond}
	}
	a := []span{ms(0, 100), ms(200, 300), ms(400, 500)}
	b := []span{ms(50, 250), ms(450, 460)}
	got := intersect(a, b)
	want := []span{ms(50, 100), ms(200, 250), ms(450, 460)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("intersect = %v, want %v", got, want)
	}
	if total(got) != 110*time.Millisecond {
		t.Errorf("total = %v", total(got))
	}
	if !overlaps(got, ms(90, 95)) || overlaps(got, ms(100, 200)) {
		t.Error("overlaps")
	}
}

func TestAllDownNeedsEveryAddressDown(t *testing.T) {
	w := newWatcher([]string{"a", "b", "c"}, time.Now(), time.Millisecond)
	w.down["a"] = []span{{0, 100}}
	w.down["b"] = []span{{50, 150}}
	if got := w.allDown(); len(got) != 0 {
		t.Errorf("allDown with c never down = %v, want none", got)
	}
	w.down["c"] = []span{{60, 70}}
	if got := w.allDown(); !reflect.DeepEqual(got, []span{{60, 70}}) {
		t.Errorf("allDown = %v, want [{60 70}]", got)
	}
}
