package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

func checkProbes(_ *Project, s *Service) *Error {
	for _, p := range []struct {
		key   string
		probe *Probe
	}{{ExtensionKey + ".liveness", s.Tend.Liveness}, {ExtensionKey + ".readiness", s.Tend.Readiness}} {
		if p.probe != nil {
			if err := checkProbe(s.Name, p.key, p.probe); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkProbe(service, key string, p *Probe) *Error {
	kinds := 0
	if p.HTTP != nil {
		kinds++
	}
	if p.TCP != nil {
		kinds++
	}
	if p.Exec != nil {
		kinds++
	}
	if kinds != 1 {
		return errorf(service, key, "want exactly one of http, tcp and exec (got %d)", kinds)
	}
	switch {
	case p.Interval <= 0:
		return errorf(service, key+".interval", "must be positive (got %s)", p.Interval)
	case p.Timeout <= 0:
		return errorf(service, key+".timeout", "must be positive (got %s)", p.Timeout)
	case p.FailureThreshold < 1:
		return errorf(service, key+".failure_threshold", "must be 1 or more (got %d)", p.FailureThreshold)
	case p.SuccessThreshold < 1:
		return errorf(service, key+".success_threshold", "must be 1 or more (got %d)", p.SuccessThreshold)
	case p.StartGrace < 0:
		return errorf(service, key+".start_grace", "must not be negative (got %s)", p.StartGrace)
	}
	switch {
	case p.HTTP != nil:
		h := p.HTTP
		switch {
		case h.Port == 0:
			return errorf(service, key+".http.port", "required (1-65535)")
		case !strings.HasPrefix(h.Path, "/"):
			return errorf(service, key+".http.path", "must start with / (got %q)", h.Path)
		case h.StatusMin < 100 || h.StatusMax > 599 || h.StatusMin > h.StatusMax:
			return errorf(service, key+".http.status", "want a range within 100-599 (got %d-%d)", h.StatusMin, h.StatusMax)
		}
		for k := range h.Headers {
			if k == "" || strings.ContainsAny(k, " :\r\n") {
				return errorf(service, key+".http.headers", "invalid header name %q", k)
			}
		}
	case p.TCP != nil:
		if p.TCP.Port == 0 {
			return errorf(service, key+".tcp.port", "required (1-65535)")
		}
	default:
		if len(p.Exec) == 0 || p.Exec[0] == "" {
			return errorf(service, key+".exec", "want a command, as a list: [\"/app\", \"-check\"]")
		}
	}
	return nil
}

func checkLogRules(_ *Project, s *Service) *Error {
	for i, r := range s.Tend.Logs {
		key := ExtensionKey + ".logs[" + strconv.Itoa(i) + "]"
		if _, err := CompileLogPattern(r.Pattern); err != nil {
			return errorf(s.Name, key+".pattern", "%v", err)
		}
		switch {
		case r.Count < 1:
			return errorf(s.Name, key+".count", "must be 1 or more (got %d)", r.Count)
		case r.Window <= 0:
			return errorf(s.Name, key+".window", "must be positive (got %s)", r.Window)
		case r.Cooldown < 0:
			return errorf(s.Name, key+".cooldown", "must not be negative (got %s)", r.Cooldown)
		}
		switch r.Action {
		case LogReplace, LogRestartDependents, LogNotify:
		default:
			return errorf(s.Name, key+".action", "must be one of replace, restart-dependents, notify (got %q)", r.Action)
		}
	}
	return nil
}

// CompileLogPattern compiles a log rule's pattern; an empty one is an error,
// since it would match every line.
func CompileLogPattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, errors.New("required")
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %s", p, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}
