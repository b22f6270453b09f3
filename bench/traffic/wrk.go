package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// wrkResult is one wrk run: what wrk printed, and who used the CPU meanwhile.
type wrkResult struct {
	Requests      int64
	RPS           float64
	P50, P90, P99 time.Duration
	Max           time.Duration
	SocketErrors  string // wrk's "connect 0, read 0, write 0, timeout 0", or "" when it printed none
	Non2xx        int64
	CPU           cpuSplit
}

func (r wrkResult) errors() string {
	var parts []string
	if r.SocketErrors != "" {
		parts = append(parts, "socket errors "+r.SocketErrors)
	}
	if r.Non2xx > 0 {
		parts = append(parts, fmt.Sprintf("non-2xx %d", r.Non2xx))
	}
	if len(parts) == 0 {
		return "errors 0"
	}
	return strings.Join(parts, ", ")
}

func (r wrkResult) line() string {
	return fmt.Sprintf("%8.0f req/s  p50 %6s ms  p99 %6s ms  max %6s ms  (%d requests, %s)  cpu %s",
		r.RPS, harness.Millis(r.P50), harness.Millis(r.P99), harness.Millis(r.Max), r.Requests, r.errors(), r.CPU)
}

// runWrk runs wrk against url for d. With proxy or containers set it also accounts the
// CPU time of wrk, the proxy's processes, the replicas and the whole host over the run.
func runWrk(ctx context.Context, c config, url string, d time.Duration, proxy func() []int, containers func() []string) (wrkResult, error) {
	var before cpuSample
	acct := proxy != nil || containers != nil
	if acct {
		before = sampleCPU(proxy, containers)
	}
	cmd := exec.CommandContext(ctx, c.wrkBin, "-t", strconv.Itoa(c.threads), "-c", strconv.Itoa(c.conns),
		"-d", fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds())), "--latency", url)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(t0)
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w: %s", err, harness.Tail(string(out), 400))
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, err
	}
	if acct {
		r.CPU = before.until(sampleCPU(proxy, containers), wall)
		r.CPU.Wrk = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return r, nil
}

var (
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|75|90|99)%\s+(\S+)\s*$`)
	wrkLatency  = regexp.MustCompile(`(?m)^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s+(\d+) requests in `)
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s+Socket errors: (.*)$`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s+Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk reads the summary wrk prints with --latency.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no Requests/sec in its output: %s", harness.Tail(out, 400))
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkRequests.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	pcts := map[string]*time.Duration{"50": &r.P50, "90": &r.P90, "99": &r.P99}
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		if p, ok := pcts[m[1]]; ok {
			d, err := parseWrkDuration(m[2])
			if err != nil {
				return r, err
			}
			*p = d
		}
	}
	if r.P99 == 0 && r.Requests > 0 {
		return r, fmt.Errorf("wrk: no latency distribution in its output (--latency): %s", harness.Tail(out, 400))
	}
	if m := wrkLatency.FindStringSubmatch(out); m != nil {
		r.Max, _ = parseWrkDuration(m[3])
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		r.SocketErrors = strings.TrimSpace(m[1])
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r, nil
}

// parseWrkDuration reads wrk's latencies: "446.00us", "2.37ms", "1.02s", "1.50m".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				break
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("wrk: cannot read latency %q", s)
}
