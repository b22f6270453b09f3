package main

import (
	"testing"
	"time"
)

// wrk 4.1.0's output with --latency, as run by the benchmark.
const wrkOut = `Running 5s test @ http://127.0.0.1:18080/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    16.81ms   17.09ms   1.02s    88.85%
    Req/Sec     1.18k   532.53     2.90k    72.16%
  Latency Distribution
     50%  446.00us
     75%   21.07ms
     90%   36.16ms
     99%   81.15ms
  11636 requests in 5.07s, 2.67MB read
  Socket errors: connect 0, read 3, write 0, timeout 0
  Non-2xx or 3xx responses: 12
Requests/sec:   2293.55
Transfer/sec:    539.23KB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{
		Requests: 11636, RPS: 2293.55,
		P50: 446 * time.Microsecond, P90: 36160 * time.Microsecond, P99: 81150 * time.Microsecond, Max: 1020 * time.Millisecond,
		SocketErrors: "connect 0, read 3, write 0, timeout 0", Non2xx: 12,
	}
	if r != want {
		t.Errorf("parseWrk:\n got %+v\nwant %+v", r, want)
	}
}

func TestParseWrkRefusesOtherOutput(t *testing.T) {
	for name, out := range map[string]string{
		"unreachable":  "unable to connect to 127.0.0.1:18080 Connection refused\n",
		"no --latency": "Running 1s test @ http://x/\n  10 requests in 1.00s, 1KB read\nRequests/sec:   10.00\n",
	} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseWrkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"446.00us": 446 * time.Microsecond, "2.37ms": 2370 * time.Microsecond, "1.02s": 1020 * time.Millisecond, "1.50m": 90 * time.Second,
	} {
		if got, err := parseWrkDuration(in); err != nil || got != want {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseWrkDuration("fast"); err == nil {
		t.Error(`parseWrkDuration("fast"): no error`)
	}
}
