package compose

import (
	"fmt"
	"github.com/tend-sh/tend/internal/spec"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// parseExtension reads a service's x-tend block and fills in defaults. It is strict: an
// unknown key is an error, not a warning, because a misspelt setting would otherwise
// be lost without a word and the service supervised in a way nobody asked for.
func parseExtension(service string, raw any) (spec.Extension, error) {
	ext := spec.Extension{Backoff: spec.Backoff{
		Initial:    spec.DefaultBackoffInitial,
		Max:        spec.DefaultBackoffMax,
		ResetAfter: spec.DefaultBackoffResetAfter,
	}}
	block, err := mapping(service, spec.ExtensionKey, raw, "backoff", "liveness", "readiness", "logs", "idempotent", "autoscale",
		"quarantine", "fallback", "breaker")
	if err != nil {
		return spec.Extension{}, err
	}
	if ext.Liveness, err = parseProbe(service, spec.ExtensionKey+".liveness", block["liveness"]); err != nil {
		return spec.Extension{}, err
	}
	if ext.Readiness, err = parseProbe(service, spec.ExtensionKey+".readiness", block["readiness"]); err != nil {
		return spec.Extension{}, err
	}
	if ext.Logs, err = parseLogRules(service, block["logs"]); err != nil {
		return spec.Extension{}, err
	}
	if ext.Idempotent, err = parseMethods(service, spec.ExtensionKey+".idempotent", block["idempotent"]); err != nil {
		return spec.Extension{}, err
	}
	if err := parseIsolation(service, block, &ext); err != nil { // isolation.go
		return spec.Extension{}, err
	}
	const key = spec.ExtensionKey + ".backoff"
	backoff, err := mapping(service, key, block["backoff"], "initial", "max", "reset_after")
	if err != nil {
		return spec.Extension{}, err
	}
	fields := []struct {
		name string
		dst  *time.Duration
	}{{"initial", &ext.Backoff.Initial}, {"max", &ext.Backoff.Max}, {"reset_after", &ext.Backoff.ResetAfter}}
	for _, f := range fields {
		v, set := backoff[f.name]
		if !set {
			continue
		}
		if *f.dst, err = parseDuration(v); err != nil {
			return spec.Extension{}, errorf(service, key+"."+f.name, "%v", err)
		}
	}
	if b := ext.Backoff; b.Initial > b.Max {
		return spec.Extension{}, errorf(service, key, "initial %s is greater than max %s", b.Initial, b.Max)
	}
	return ext, nil
}

// parseMethods reads a list of HTTP methods. Methods are case-sensitive
// and the standard ones upper case: "put" would never match a request.
func parseMethods(service, key string, raw any) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, errorf(service, key, "want a list of HTTP methods, e.g. [PUT, DELETE] (got %s)", shown(raw))
	}
	var out []string
	for i, v := range list {
		m, ok := v.(string)
		if !ok || m == "" || strings.ToUpper(m) != m || strings.IndexFunc(m, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
			return nil, errorf(service, fmt.Sprintf("%s[%d]", key, i), "want an HTTP method in upper case, e.g. PUT (got %s)", shown(v))
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// mapping reads raw as a mapping whose keys are all known; nil (absent or `key:` with
// no value) is an empty one.
func mapping(service, key string, raw any, known ...string) (map[string]any, error) {
	if raw == nil {
		return nil, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, errorf(service, key, "must be a mapping (got %s)", shown(raw))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, k) {
			return nil, errorf(service, key, "unknown key %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	return m, nil
}

// parseDuration reads a duration as compose does (Go's syntax, plus d and w units).
func parseDuration(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("invalid duration %v (want e.g. 500ms or 1m30s)", v)
	}
	var d types.Duration
	if err := d.DecodeMapstructure(s); err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 500ms or 1m30s)", s)
	}
	return time.Duration(d), nil
}
