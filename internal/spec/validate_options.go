package spec

import (
	"math"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

// checkOptions checks the container settings of s (Options). Messages use compose's
// keys, like the rest of Validate.
func checkOptions(_ *Project, s *Service) *Error {
	checks := []func(*Service) *Error{checkIdentity, checkCapabilities, checkHosts, checkFileMounts,
		checkTmpfs, checkTargets, checkUlimits, checkLimits, checkLogging}
	for _, check := range checks {
		if err := check(s); err != nil {
			return err
		}
	}
	return nil
}

func checkIdentity(s *Service) *Error {
	switch {
	case s.User != "" && strings.ContainsFunc(s.User, isSpace):
		return errorf(s.Name, "user", "must be a user name or id, optionally with :group (got %q)", s.User)
	case s.WorkingDir != "" && !path.IsAbs(s.WorkingDir):
		return errorf(s.Name, "working_dir", "must be an absolute path (got %q)", s.WorkingDir)
	case s.Hostname != "" && !validHostname(s.Hostname):
		return errorf(s.Name, "hostname", "invalid hostname %q: want at most 64 letters, digits, dashes, dots and underscores, starting with a letter, digit or underscore", s.Hostname)
	}
	return nil
}

func checkCapabilities(s *Service) *Error {
	for _, list := range []struct {
		key  string
		caps []string
	}{{"cap_add", s.CapAdd}, {"cap_drop", s.CapDrop}} {
		for _, c := range list.caps {
			if c == "" || strings.Trim(c, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
				return errorf(s.Name, list.key, "invalid capability %q: want a name such as NET_ADMIN or ALL", c)
			}
		}
	}
	return nil
}

// checkHosts checks extra_hosts and dns, which the engine writes into /etc/hosts
// and /etc/resolv.conf: a bad address there breaks name resolution in the container.
func checkHosts(s *Service) *Error {
	for _, h := range s.ExtraHosts {
		if h.Host == "" || strings.ContainsFunc(h.Host, isSpace) {
			return errorf(s.Name, "extra_hosts", "invalid host name %q", h.Host)
		}
		if _, err := netip.ParseAddr(h.IP); err != nil && h.IP != HostGateway {
			return errorf(s.Name, "extra_hosts", "%s: %q is not an IP address or %s", h.Host, h.IP, HostGateway)
		}
	}
	for _, addr := range s.DNS {
		if _, err := netip.ParseAddr(addr); err != nil {
			return errorf(s.Name, "dns", "%q is not an IP address", addr)
		}
	}
	return nil
}

func checkFileMounts(s *Service) *Error {
	for _, list := range []struct {
		key   string
		files []FileMount
	}{{"secrets", s.Secrets}, {"configs", s.Configs}} {
		for _, f := range list.files {
			switch {
			case f.Name == "":
				return errorf(s.Name, list.key, "entry for %s has no name", f.Target)
			case !path.IsAbs(f.Source):
				return errorf(s.Name, list.key, "%q: source %q is not an absolute path", f.Name, f.Source)
			case !path.IsAbs(f.Target):
				return errorf(s.Name, list.key, "%q: target %q is not an absolute path", f.Name, f.Target)
			}
		}
	}
	return nil
}

func checkTmpfs(s *Service) *Error {
	for _, t := range s.Tmpfs {
		if !path.IsAbs(t.Target) {
			return errorf(s.Name, "tmpfs", "target %q is not an absolute path", t.Target)
		}
		if t.Options == "" {
			continue
		}
		for _, opt := range strings.Split(t.Options, ",") {
			key, value, _ := strings.Cut(opt, "=")
			switch {
			case key == "" || strings.ContainsFunc(opt, isSpace):
				return errorf(s.Name, "tmpfs", "%s: invalid option %q in %q", t.Target, opt, t.Options)
			case key == "mode" && (value == "" || strings.Trim(value, "01234567") != ""):
				return errorf(s.Name, "tmpfs", "%s: mode must be octal, such as 1777 (got %q)", t.Target, value)
			}
		}
	}
	return nil
}

// checkTargets rejects two mounts of any kind at one path: the engine refuses the
// container. Volumes among themselves are checkMounts' to report.
func checkTargets(s *Service) *Error {
	used := map[string]string{}
	for _, m := range s.Mounts {
		used[m.Target] = "volumes"
	}
	type target struct{ key, path string }
	var targets []target
	for _, t := range s.Tmpfs {
		targets = append(targets, target{"tmpfs", t.Target})
	}
	for _, f := range s.Secrets {
		targets = append(targets, target{"secrets", f.Target})
	}
	for _, f := range s.Configs {
		targets = append(targets, target{"configs", f.Target})
	}
	for _, t := range targets {
		if other, ok := used[t.path]; ok {
			return errorf(s.Name, t.key, "%s is already mounted by %s", t.path, other)
		}
		used[t.path] = t.key
	}
	return nil
}

// ulimitNames are the limits the engine knows (setrlimit's, without RLIMIT_).
var ulimitNames = []string{"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
	"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}

func checkUlimits(s *Service) *Error {
	for i, u := range s.Ulimits {
		key := "ulimits." + u.Name
		switch {
		case !slices.Contains(ulimitNames, u.Name):
			return errorf(s.Name, "ulimits", "unknown limit %q (known: %s)", u.Name, strings.Join(ulimitNames, ", "))
		case i > 0 && s.Ulimits[i-1].Name >= u.Name:
			return errorf(s.Name, key, "listed twice or out of order (want sorted by name)")
		case u.Soft < -1 || u.Hard < -1:
			return errorf(s.Name, key, "soft and hard must be 0 or more, or -1 for unlimited (got %d and %d)", u.Soft, u.Hard)
		case u.Hard != -1 && (u.Soft == -1 || u.Soft > u.Hard):
			return errorf(s.Name, key, "soft limit %s is greater than hard limit %d", unlimited(u.Soft), u.Hard)
		}
	}
	return nil
}

func unlimited(n int64) string {
	if n == -1 {
		return "-1 (unlimited)"
	}
	return strconv.FormatInt(n, 10)
}

func checkLimits(s *Service) *Error {
	l := s.Limits
	const key = "deploy.resources.limits."
	switch {
	case l.CPUs < 0 || math.IsNaN(l.CPUs) || math.IsInf(l.CPUs, 0):
		return errorf(s.Name, key+"cpus", "must be a positive number of CPUs (got %v)", l.CPUs)
	case l.Memory < 0:
		return errorf(s.Name, key+"memory", "must not be negative (got %s)", l.Memory)
	case l.Memory > 0 && l.Memory < MinMemory:
		return errorf(s.Name, key+"memory", "must be at least %s, the engine's minimum (got %s)", MinMemory, l.Memory)
	case l.Pids < -1:
		return errorf(s.Name, key+"pids", "must be 0 or more, or -1 for unlimited (got %d)", l.Pids)
	}
	return nil
}

func checkLogging(s *Service) *Error {
	l := s.Logging
	if l == nil {
		return nil
	}
	if strings.ContainsFunc(l.Driver, isSpace) {
		return errorf(s.Name, "logging.driver", "invalid driver name %q", l.Driver)
	}
	for k := range l.Options {
		if k == "" {
			return errorf(s.Name, "logging.options", "an option has no name")
		}
	}
	return nil
}

// validHostname applies RFC 1123, leniently (underscores are common in compose
// files and the kernel takes them), within Linux's limit of 64 bytes.
func validHostname(h string) bool {
	if len(h) > 64 || h[0] == '-' || h[0] == '.' {
		return false
	}
	return strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == ""
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }
