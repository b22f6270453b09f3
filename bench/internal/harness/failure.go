package harness

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
)

// Failure kinds, as FailureKind names them. An answer outside 2xx is "HTTP <code>".
const (
	FailReset       = "reset"       // the connection was reset (RST): its other end died or gave up
	FailEOF         = "EOF"         // the connection closed before the answer was whole
	FailTimeout     = "timeout"     // no answer within the client's timeout
	FailRefused     = "refused"     // nothing listened (RST to the SYN)
	FailUnreachable = "unreachable" // no route to the address
	FailBrokenPipe  = "broken pipe" // the request could not be written
	FailH2Stream    = "h2 stream reset"
	FailH2Conn      = "h2 connection lost"     // GOAWAY, or the connection closed under the stream
	FailH2NoConn    = "h2 no connection"       // the HTTP/2 connection could not be set up
	FailH2NotSpoken = "h2c answered in HTTP/1" // the other end does not speak h2c
)

var addrPort = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// FailureKind names what went wrong with a request, in a few words that do not differ
// between connections: one of the Fail kinds, "HTTP 502", or for anything else the
// error's text with addresses replaced by ADDR ("other: ...").
func FailureKind(err error) string {
	var se StatusError
	if errors.As(err, &se) {
		return se.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() {
		return FailTimeout
	}
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailRefused
	case errors.Is(err, syscall.ECONNRESET), strings.Contains(msg, "connection reset by peer"):
		return FailReset
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return FailUnreachable
	case errors.Is(err, syscall.EPIPE):
		return FailBrokenPipe
	// HTTP/2's errors are unexported types of net/http: known by their text.
	case strings.Contains(msg, "frame header looked like an HTTP/1.1 header"):
		return FailH2NotSpoken
	case strings.Contains(msg, "client conn could not be established"):
		return FailH2NoConn
	case strings.Contains(msg, "stream error:"), strings.Contains(msg, "RST_STREAM"):
		return FailH2Stream
	case strings.Contains(msg, "GOAWAY"), strings.Contains(msg, "client connection lost"),
		strings.Contains(msg, "http2: client connection force closed"):
		return FailH2Conn
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		strings.HasSuffix(msg, ": EOF"), strings.HasSuffix(msg, "unexpected EOF"),
		strings.Contains(msg, "server closed idle connection"):
		return FailEOF
	}
	if ue != nil {
		msg = ue.Err.Error()
	}
	return "other: " + addrPort.ReplaceAllString(msg, "ADDR")
}

// Tally counts failures by kind; Line prints them in a fixed order.
type Tally map[string]int

// Add counts n more of kind.
func (t Tally) Add(kind string, n int) { t[kind] += n }

// Sum is the number of failures counted.
func (t Tally) Sum() int {
	n := 0
	for _, v := range t {
		n += v
	}
	return n
}

// Line lists the counts, the commonest first (then by name): "12 reset, 3 HTTP 502";
// "-" when there are none.
func (t Tally) Line() string {
	ks := slices.Collect(maps.Keys(t))
	slices.SortFunc(ks, func(a, b string) int {
		if t[a] != t[b] {
			return t[b] - t[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range ks {
		if t[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", t[k], k))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
