package compose

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// parseIsolation reads x-tend quarantine, fallback and breaker into ext.
// What is not set stays zero, which means the default (spec.Service.Budget,
// spec.Breaker.Effective): a service without these keys hashes and stores
// as it did before they existed.
func parseIsolation(service string, block map[string]any, ext *spec.Extension) error {
	var err error
	if ext.Quarantine, err = parseQuarantine(service, block["quarantine"]); err != nil {
		return err
	}
	if ext.Fallback, err = parseFallback(service, block["fallback"]); err != nil {
		return err
	}
	ext.Breaker, err = parseBreaker(service, block["breaker"])
	return err
}

func parseQuarantine(service string, raw any) (spec.Quarantine, error) {
	const key = spec.ExtensionKey + ".quarantine"
	var q spec.Quarantine
	m, err := mapping(service, key, raw, "after", "within", "retry", "retry_max", "probation")
	if err != nil {
		return q, err
	}
	if v, ok := m["after"]; ok {
		if q.After, err = integer(v); err != nil || q.After < 1 {
			return q, errorf(service, key+".after", "want a whole number of at least 1 (got %s)", shown(v))
		}
	}
	if err := durations(service, key, m, map[string]*time.Duration{
		"within": &q.Within, "retry": &q.Retry, "retry_max": &q.RetryMax, "probation": &q.Probation}); err != nil {
		return q, err
	}
	if q.Retry > 0 && q.RetryMax > 0 && q.Retry > q.RetryMax {
		return q, errorf(service, key, "retry %s is greater than retry_max %s", q.Retry, q.RetryMax)
	}
	return q, nil
}

func parseFallback(service string, raw any) (spec.Fallback, error) {
	const key = spec.ExtensionKey + ".fallback"
	var f spec.Fallback
	m, err := mapping(service, key, raw, "status", "body", "headers")
	if err != nil {
		return f, err
	}
	if v, ok := m["status"]; ok {
		if f.Status, err = integer(v); err != nil || f.Status < 200 || f.Status > 599 || http.StatusText(f.Status) == "" {
			return f, errorf(service, key+".status", "want an HTTP status from 200 to 599 (got %s)", shown(v))
		}
	}
	if v, ok := m["body"]; ok {
		s, isString := v.(string)
		if !isString {
			return f, errorf(service, key+".body", "want a string (got %s)", shown(v))
		}
		f.Body = s
	}
	if v, ok := m["headers"]; ok {
		hs, isMap := v.(map[string]any)
		if !isMap {
			return f, errorf(service, key+".headers", "must be a mapping of header names to values (got %s)", shown(v))
		}
		f.Headers = map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(hs)) {
			if !validHeaderName(k) {
				return f, errorf(service, key+".headers", "invalid header name %q", k)
			}
			val := fmt.Sprint(hs[k])
			if !validHeaderValue(val) {
				return f, errorf(service, key+".headers."+k, "a header value cannot hold a line break or control character")
			}
			f.Headers[http.CanonicalHeaderKey(k)] = val
		}
	}
	return f, nil
}

func parseBreaker(service string, raw any) (spec.Breaker, error) {
	const key = spec.ExtensionKey + ".breaker"
	var b spec.Breaker
	if off, ok := raw.(bool); ok && !off || raw == "off" {
		b.Off = true
		return b, nil
	}
	m, err := mapping(service, key, raw, "error_ratio", "min_requests", "window", "latency", "open")
	if err != nil {
		return b, err
	}
	if v, ok := m["error_ratio"]; ok {
		r, ferr := ratio(v)
		if ferr != nil {
			return b, errorf(service, key+".error_ratio", "%v", ferr)
		}
		b.ErrorRatio = r
	}
	if v, ok := m["min_requests"]; ok {
		if b.MinRequests, err = integer(v); err != nil || b.MinRequests < 1 {
			return b, errorf(service, key+".min_requests", "want a whole number of at least 1 (got %s)", shown(v))
		}
	}
	return b, durations(service, key, m, map[string]*time.Duration{"window": &b.Window, "latency": &b.Latency, "open": &b.Open})
}

// ratio reads a number in (0, 1].
func ratio(v any) (float64, error) {
	var r float64
	switch n := v.(type) {
	case float64:
		r = n
	case int:
		r = float64(n)
	case string:
		var err error
		if r, err = strconv.ParseFloat(n, 64); err != nil {
			return 0, fmt.Errorf("want a number above 0 and at most 1, e.g. 0.5 (got %s)", shown(v))
		}
	default:
		return 0, fmt.Errorf("want a number above 0 and at most 1, e.g. 0.5 (got %s)", shown(v))
	}
	if r <= 0 || r > 1 {
		return 0, fmt.Errorf("want a number above 0 and at most 1, e.g. 0.5 (got %s)", shown(v))
	}
	return r, nil
}

// durations reads the named duration keys of m that are set; zero is not
// allowed except for latency, where it means off.
func durations(service, key string, m map[string]any, dst map[string]*time.Duration) error {
	for _, name := range slices.Sorted(maps.Keys(dst)) {
		v, ok := m[name]
		if !ok {
			continue
		}
		d, err := parseDuration(v)
		if err != nil {
			return errorf(service, key+"."+name, "%v", err)
		}
		if d < 0 || d == 0 && name != "latency" {
			return errorf(service, key+"."+name, "want a duration above zero (got %s)", shown(v))
		}
		*dst[name] = d
	}
	return nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r <= ' ' || r >= 0x7f || r == ':' {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool {
	for _, r := range v {
		if r < ' ' && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}
