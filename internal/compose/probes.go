package compose

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// parseProbe reads an x-tend liveness or readiness block:
//
//	http: {port: 8080, path: /health, status: "200-399", body: ok, headers: {Host: x}}
//	tcp: {port: 5432}
//	exec: ["/app", "-check"]
//	interval: 5s, timeout: 2s, failure_threshold: 3, success_threshold: 1, start_grace: 0s
func parseProbe(service, key string, raw any) (*spec.Probe, error) {
	if raw == nil {
		return nil, nil
	}
	m, err := mapping(service, key, raw, "http", "tcp", "exec", "interval", "timeout", "failure_threshold", "success_threshold", "start_grace")
	if err != nil {
		return nil, err
	}
	p := &spec.Probe{Interval: spec.DefaultProbeInterval, Timeout: spec.DefaultProbeTimeout,
		FailureThreshold: spec.DefaultProbeFailureThreshold, SuccessThreshold: spec.DefaultProbeSuccessThreshold}
	for name, dst := range map[string]*time.Duration{"interval": &p.Interval, "timeout": &p.Timeout, "start_grace": &p.StartGrace} {
		if v, ok := m[name]; ok {
			if *dst, err = parseDuration(v); err != nil {
				return nil, errorf(service, key+"."+name, "%v", err)
			}
		}
	}
	for name, dst := range map[string]*int{"failure_threshold": &p.FailureThreshold, "success_threshold": &p.SuccessThreshold} {
		if v, ok := m[name]; ok {
			if *dst, err = integer(v); err != nil {
				return nil, errorf(service, key+"."+name, "%v", err)
			}
		}
	}
	if v, ok := m["http"]; ok {
		if p.HTTP, err = parseHTTPCheck(service, key+".http", v); err != nil {
			return nil, err
		}
	}
	if v, ok := m["tcp"]; ok {
		t, err := mapping(service, key+".tcp", v, "port")
		if err != nil {
			return nil, err
		}
		port, err := portNumber(t["port"])
		if err != nil {
			return nil, errorf(service, key+".tcp.port", "%v", err)
		}
		p.TCP = &spec.TCPCheck{Port: port}
	}
	if v, ok := m["exec"]; ok {
		if p.Exec, err = stringList(v); err != nil {
			return nil, errorf(service, key+".exec", "%v", err)
		}
	}
	return p, nil
}

func parseHTTPCheck(service, key string, raw any) (*spec.HTTPCheck, error) {
	m, err := mapping(service, key, raw, "port", "path", "status", "body", "headers")
	if err != nil {
		return nil, err
	}
	h := &spec.HTTPCheck{Path: "/", StatusMin: 200, StatusMax: 399}
	if h.Port, err = portNumber(m["port"]); err != nil {
		return nil, errorf(service, key+".port", "%v", err)
	}
	if v, ok := m["path"]; ok {
		if h.Path, ok = v.(string); !ok {
			return nil, errorf(service, key+".path", "must be a string (got %s)", shown(v))
		}
	}
	if v, ok := m["status"]; ok {
		if h.StatusMin, h.StatusMax, err = statusRange(v); err != nil {
			return nil, errorf(service, key+".status", "%v", err)
		}
	}
	if v, ok := m["body"]; ok {
		if h.Body, ok = v.(string); !ok {
			return nil, errorf(service, key+".body", "must be a string (got %s)", shown(v))
		}
	}
	if v, ok := m["headers"]; ok {
		hm, ok := v.(map[string]any)
		if !ok {
			return nil, errorf(service, key+".headers", "must be a mapping of names to values (got %s)", shown(v))
		}
		h.Headers = map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(hm)) {
			s, ok := hm[k].(string)
			if !ok {
				return nil, errorf(service, key+".headers."+k, "must be a string (got %s)", shown(hm[k]))
			}
			h.Headers[k] = s
		}
	}
	return h, nil
}

var statusPattern = regexp.MustCompile(`^([1-5][0-9][0-9])(?:-([1-5][0-9][0-9]))?$`)

// statusRange reads 200, "200" or "200-299".
func statusRange(v any) (int, int, error) {
	s := fmt.Sprint(v)
	m := statusPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, fmt.Errorf("want a status code or a range such as 200-399 (got %q)", s)
	}
	lo, _ := strconv.Atoi(m[1])
	hi := lo
	if m[2] != "" {
		hi, _ = strconv.Atoi(m[2])
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("range %q ends before it starts", s)
	}
	return lo, hi, nil
}

func parseLogRules(service string, raw any) ([]spec.LogRule, error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, errorf(service, spec.ExtensionKey+".logs", "must be a list of rules (got %s)", shown(raw))
	}
	var rules []spec.LogRule
	for i, item := range list {
		key := fmt.Sprintf("%s.logs[%d]", spec.ExtensionKey, i)
		m, err := mapping(service, key, item, "pattern", "count", "window", "action", "cooldown")
		if err != nil {
			return nil, err
		}
		r := spec.LogRule{Count: spec.DefaultLogCount, Window: spec.DefaultLogWindow, Action: spec.LogReplace, Cooldown: spec.DefaultLogCooldown}
		p, ok := m["pattern"].(string)
		if !ok {
			return nil, errorf(service, key+".pattern", "required: a regular expression")
		}
		r.Pattern = p
		if v, ok := m["count"]; ok {
			if r.Count, err = integer(v); err != nil {
				return nil, errorf(service, key+".count", "%v", err)
			}
		}
		for name, dst := range map[string]*time.Duration{"window": &r.Window, "cooldown": &r.Cooldown} {
			if v, ok := m[name]; ok {
				if *dst, err = parseDuration(v); err != nil {
					return nil, errorf(service, key+"."+name, "%v", err)
				}
			}
		}
		if v, ok := m["action"]; ok {
			r.Action = spec.LogAction(fmt.Sprint(v))
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func integer(v any) (int, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case uint64:
		return int(n), nil
	case float64:
		if n == float64(int(n)) {
			return int(n), nil
		}
	case string:
		if i, err := strconv.Atoi(n); err == nil {
			return i, nil
		}
	}
	return 0, fmt.Errorf("want a whole number (got %s)", shown(v))
}

func portNumber(v any) (uint16, error) {
	if v == nil {
		return 0, fmt.Errorf("required (1-65535)")
	}
	n, err := integer(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("want a port number 1-65535 (got %s)", shown(v))
	}
	return uint16(n), nil
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("want a command as a non-empty list of strings, e.g. [\"/app\", \"-check\"] (got %s)", shown(v))
	}
	out := make([]string, len(list))
	for i, a := range list {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("item %d is not a string (got %s)", i, shown(a))
		}
		out[i] = s
	}
	return out, nil
}
