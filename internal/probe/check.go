package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// Execer runs a command inside a container; runtime.Runtime satisfies it.
type Execer interface {
	Exec(ctx context.Context, id string, cmd []string) (runtime.ExecResult, error)
}

// Target is the container a probe checks.
type Target struct {
	ID string
	// IP is the container's address, checked by HTTP and TCP probes; "" while
	// it does not run or has no network. Any IP will do (tests use 127.0.0.1).
	IP        string
	StartedAt time.Time // the start of the run being checked; failures within StartGrace of it do not count
}

// Result is one check's outcome.
type Result struct {
	OK bool `json:"ok"`
	// Output says what the check saw, on one line: "HTTP 503: sick",
	// "dial tcp 172.18.0.3:8080: connect: connection refused", "timeout after 1s".
	Output string        `json:"output"`
	At     time.Time     `json:"at"`   // when the check started
	Took   time.Duration `json:"took"` // how long it ran
}

const (
	// bodyLimit is how much of an HTTP answer is searched for the wanted body.
	bodyLimit = 64 << 10
	// outputLimit bounds the part of an answer or a command's output that
	// goes into Result.Output, which ends up in the journal and the API.
	outputLimit = 200
)

// client checks HTTP probes. Keep-alives are off, so each check dials afresh
// and a dead process is seen at once rather than through a pooled connection;
// the environment's proxy is ignored, as a replica's address is local; and
// redirects are answers, not something to follow.
var client = &http.Client{
	Transport: &http.Transport{
		Proxy:              nil,
		DisableKeepAlives:  true,
		DisableCompression: true,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// TimeoutPrefix begins the Output of a check that ran out of time.
const TimeoutPrefix = "timeout after "

// Check runs one check of p against t, bounded by p.Timeout, and says how it
// went. HTTP and TCP checks dial t.IP; an exec check runs p.Exec in container
// t.ID through exec. A failure is a Result, never an error: it is what
// the check observed. A probe without a timeout gets spec.DefaultProbeTimeout.
func Check(ctx context.Context, p *spec.Probe, t Target, exec Execer) Result {
	start := time.Now()
	timeout := spec.DefaultProbeTimeout
	if p != nil && p.Timeout > 0 {
		timeout = p.Timeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, out := check(cctx, p, t, exec)
	if !ok && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		out = TimeoutPrefix + timeout.String()
	}
	return Result{OK: ok, Output: out, At: start, Took: time.Since(start)}
}

func check(ctx context.Context, p *spec.Probe, t Target, exec Execer) (bool, string) {
	switch {
	case p == nil:
		return false, "no probe to check"
	case p.HTTP != nil:
		if t.IP == "" {
			return false, noAddress
		}
		return checkHTTP(ctx, p.HTTP, t.IP)
	case p.TCP != nil:
		if t.IP == "" {
			return false, noAddress
		}
		return checkTCP(ctx, p.TCP, t.IP)
	case len(p.Exec) > 0:
		// An exec check needs no address: it runs inside the container, which
		// may have no network at all.
		return checkExec(ctx, p.Exec, t.ID, exec)
	}
	return false, "probe has no check (want http, tcp or exec)"
}

const noAddress = "no address to check: the container is not running or has no network"

func checkHTTP(ctx context.Context, h *spec.HTTPCheck, ip string) (bool, string) {
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := "http://" + net.JoinHostPort(ip, strconv.Itoa(int(h.Port))) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "tend-probe")
	for k, v := range h.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v // Go sends req.Host, not a Host header
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop `Get "http://...":`, the address is in the dial error
		}
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	if err != nil {
		return false, fmt.Sprintf("HTTP %d: reading the body: %v", resp.StatusCode, err)
	}
	lo, hi := h.StatusMin, h.StatusMax
	if lo == 0 && hi == 0 {
		lo, hi = 200, 399
	}
	ok := resp.StatusCode >= lo && resp.StatusCode <= hi
	head := "HTTP " + strconv.Itoa(resp.StatusCode)
	if ok && h.Body != "" && !strings.Contains(string(body), h.Body) {
		ok = false
		head += fmt.Sprintf(" (body lacks %q)", h.Body)
	}
	if snippet := oneLine(string(body[:min(len(body), 4*outputLimit)])); snippet != "" {
		head += ": " + snippet
	}
	return ok, head
}

func checkTCP(ctx context.Context, c *spec.TCPCheck, ip string) (bool, string) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(int(c.Port))))
	if err != nil {
		return false, err.Error()
	}
	conn.Close()
	return true, "connected"
}

func checkExec(ctx context.Context, cmd []string, id string, exec Execer) (bool, string) {
	if exec == nil {
		return false, "cannot run an exec probe: no runtime to exec with"
	}
	res, err := exec.Exec(ctx, id, cmd)
	if err != nil {
		return false, oneLine(err.Error())
	}
	out := "exit " + strconv.Itoa(res.ExitCode)
	if s := oneLine(res.Output); s != "" {
		out += ": " + s
	}
	return res.ExitCode == 0, out
}

// oneLine folds s onto one line (runs of white space become one space) and
// clips it to outputLimit bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
	if len(s) <= outputLimit {
		return s
	}
	const more = "..."
	i := outputLimit - len(more)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + more
}
