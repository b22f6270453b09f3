package compose

import (
	"fmt"
	"github.com/tend-sh/tend/internal/spec"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
)

// convertPorts maps compose ports in file order. compose-go has already expanded
// short-syntax ranges of equal length ("8000-8001:80-81") into single ports; a host
// range that is left ("8000-8010:80") is kept as a range.
func convertPorts(service string, in []types.ServicePortConfig) ([]spec.Port, error) {
	var out []spec.Port
	for _, p := range in {
		host, end, err := hostPorts(p.Published)
		if err != nil {
			return nil, errorf(service, "ports", "%v", err)
		}
		if p.Target < 1 || p.Target > 65535 {
			return nil, errorf(service, "ports", "container port %d is out of range 1-65535", p.Target)
		}
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, errorf(service, "ports", "protocol %q is not supported (want tcp, udp or sctp)", p.Protocol)
		}
		out = append(out, spec.Port{HostIP: p.HostIP, HostPort: host, HostPortEnd: end, ContainerPort: uint16(p.Target), Protocol: proto,
			AppProtocol: strings.ToLower(p.AppProtocol)})
	}
	return out, nil
}

// hostPorts parses compose's published port or range ("8000-8010"; compose-go has
// already expanded a range matched by a container range); "" and "0" leave the
// choice to the engine.
func hostPorts(published string) (start, end uint16, err error) {
	first, last, isRange := strings.Cut(published, "-")
	if start, err = hostPort(first); err != nil || !isRange {
		return start, 0, err
	}
	if end, err = hostPort(last); err != nil {
		return 0, 0, err
	}
	if start == 0 || end <= start {
		return 0, 0, fmt.Errorf("host port range %s: want a first port below the last", published)
	}
	return start, end, nil
}

// hostPort parses one published port.
func hostPort(published string) (uint16, error) {
	if published == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(published)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid host port %q", published)
	}
	if n > 65535 {
		return 0, fmt.Errorf("host port %d is out of range 1-65535", n)
	}
	return uint16(n), nil
}

// portSpec is the short-syntax text of a ports entry after interpolation.
func portSpec(entry any, lookup template.Mapping) (string, bool) {
	switch v := entry.(type) {
	case int:
		return strconv.Itoa(v), true
	case string:
		s, err := template.Substitute(v, lookup)
		return s, err == nil
	default:
		return "", false // long syntax: compose-go parses it without failing
	}
}

// checkPortSpec checks a short-syntax port, [[ip:]host:]container[/protocol], in
// tend's words for out-of-range numbers and compose-go's for anything else.
func checkPortSpec(spec string) error {
	body, _, _ := strings.Cut(spec, "/")
	if i := strings.LastIndex(body, "]:"); i >= 0 {
		body = body[i+2:] // a bracketed IPv6 host IP holds colons of its own
	}
	parts := strings.Split(body, ":")
	if err := checkPortNumbers("container", parts[len(parts)-1]); err != nil {
		return err
	}
	if len(parts) >= 2 {
		if err := checkPortNumbers("host", parts[len(parts)-2]); err != nil {
			return err
		}
	}
	if _, err := types.ParsePortConfig(spec); err != nil {
		return fmt.Errorf("%q: %v", spec, err)
	}
	return nil
}

// checkPortNumbers checks each end of a port or port range; text that is not a
// number is left to compose-go's parser.
func checkPortNumbers(what, field string) error {
	for _, s := range strings.SplitN(field, "-", 2) {
		n, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		if n > 65535 || (n < 1 && what == "container") {
			return fmt.Errorf("%s port %d is out of range 1-65535", what, n)
		}
	}
	return nil
}
