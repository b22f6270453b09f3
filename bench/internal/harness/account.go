package harness

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What each proxy says about a run, next to what the clients saw: tend's counters (GET
// /metrics on its socket) and its debug log, nginx's error log.

// ProxyCounters are tend's proxy counters for one project.
type ProxyCounters struct {
	Attempts  int64            // HTTP requests sent to replicas (HTTP mode)
	Retries   int64            // of those, retries
	NoReplica int64            // answered by tend itself, no replica being ready
	TCPConns  int64            // connections passed through to replicas (TCP mode)
	Non2xx    map[string]int64 // attempts answered outside 2xx or failed, by replica ("web/1")
	Ejections map[string]int64 // by replica
}

// Minus is what changed from b to a.
func (a ProxyCounters) Minus(b ProxyCounters) ProxyCounters {
	return ProxyCounters{a.Attempts - b.Attempts, a.Retries - b.Retries, a.NoReplica - b.NoReplica, a.TCPConns - b.TCPConns,
		minusMap(a.Non2xx, b.Non2xx), minusMap(a.Ejections, b.Ejections)}
}

func minusMap(a, b map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// ParseProxyCounters reads a project's series from Prometheus text: requests_total is by
// replica (empty when none was ready) and code.
func ParseProxyCounters(text, project string) ProxyCounters {
	c := ProxyCounters{Non2xx: map[string]int64{}, Ejections: map[string]int64{}}
	for _, line := range strings.Split(text, "\n") {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !strings.Contains(labels, `project="`+project+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		n, rep := int64(v), label(labels, "replica")
		switch name {
		case "tend_proxy_requests_total":
			if rep == "" {
				c.NoReplica += n
				continue
			}
			c.Attempts += n
			if !strings.HasPrefix(label(labels, "code"), "2") {
				c.Non2xx[rep] += n
			}
		case "tend_proxy_retries_total":
			c.Retries += n
		case "tend_proxy_ejections_total":
			c.Ejections[rep] += n
		case "tend_proxy_tcp_connections_total":
			c.TCPConns += n
		}
	}
	return c
}

// label returns a label's value from a series' labels: k1="v1",k2="v2".
func label(labels, key string) string {
	_, rest, ok := strings.Cut(","+labels, ","+key+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// ByReplica formats counts by replica: "383 (web/1 3, web/2 380)", or "0".
func ByReplica(m map[string]int64) string {
	var parts []string
	var sum int64
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		sum += m[k]
	}
	if len(parts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", sum, strings.Join(parts, ", "))
}

// Metrics returns the daemon's Prometheus text (GET /metrics on its API socket).
func (t *Tend) Metrics(ctx context.Context) (string, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", t.Socket)
		}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://tend/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(b), err
}

// ProxyAccount reads tend's proxy counters for project now, and returns a function that
// says what changed by the time it is called, with the daemon's debug lines on failed
// attempts logged meanwhile (the daemon runs with --debug).
func (t *Tend) ProxyAccount(ctx context.Context, project string) func() string {
	read := func() (ProxyCounters, error) {
		text, err := t.Metrics(ctx)
		return ParseProxyCounters(text, project), err
	}
	before, err := read()
	logFrom := len(t.Log())
	return func() string {
		after, err2 := read()
		if err = FirstErr(err, err2); err != nil {
			return "tend's metrics: " + err.Error()
		}
		d := after.Minus(before)
		s := fmt.Sprintf("tend's proxy: %d attempts to replicas, %d retries, failed attempts %s, %d answered with no replica ready, ejections %s; %d TCP connections passed through",
			d.Attempts, d.Retries, ByReplica(d.Non2xx), d.NoReplica, ByReplica(d.Ejections), d.TCPConns)
		if log := t.Log(); len(log) > logFrom {
			if n := FailedAttempts(log[logFrom:]); len(n) > 0 {
				s += "\n          its log on the failed attempts: " + Counts(n)
			}
		}
		return s
	}
}

// FailedAttempts counts the daemon's debug lines on failed attempts by replica and
// error (addresses left out).
func FailedAttempts(log string) map[string]int {
	n := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="proxy: attempt failed"`) {
			n[LogValue(line, "replica")+": "+addrPort.ReplaceAllString(LogValue(line, "err"), "ADDR")]++
		}
	}
	return n
}

// Counts lists counts by what was counted, in order: "3 x a; 1 x b".
func Counts(n map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%d x %s", n[k], k))
	}
	return strings.Join(parts, "; ")
}

// LogValue is key's value in a log line of slog's text format (quoted or not).
func LogValue(line, key string) string {
	_, rest, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		return ""
	}
	if v, err := strconv.QuotedPrefix(rest); err == nil {
		v, _ = strconv.Unquote(v)
		return v
	}
	v, _, _ := strings.Cut(rest, " ")
	return v
}

// Account remembers where nginx's error log ends, and returns a function that sums up
// what was logged since.
func (n *Nginx) Account() func() string {
	off := n.ErrorLogSize()
	return func() string {
		errs := NginxErrors(n.ErrorLog(off))
		if len(errs) == 0 {
			return "nginx error log: nothing"
		}
		return "nginx error log: " + Counts(errs)
	}
}
