package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	neturl "net/url"
	"strings"

	"github.com/valyala/fasthttp"
)

// The loop's HTTP/1.x: what it parses of requests and answers, and what it
// writes for the client.

// loopable reports whether the loop can serve a request with this head:
// HTTP/1.0 or 1.1, an origin-form target (or OPTIONS *), a body it can
// replay, no upgrade. The rest goes to the goroutine path: an
// absolute-form target, a version the loop would rewrite as 1.1, and a
// head that is not sane, which it refuses.
func loopable(h *fasthttp.RequestHeader) bool {
	n := bodyLength(h)
	uri, proto := h.RequestURI(), string(h.Protocol())
	return (len(uri) > 0 && uri[0] == '/' || string(uri) == "*") && sane(h.Method(), uri, h.Host()) &&
		(proto == "HTTP/1.1" || proto == "HTTP/1.0") &&
		n >= 0 && n <= maxReplayBody && !isUpgrade(h) && len(h.Peek("Expect")) == 0
}

// sane says whether a request's target and Host are ones tend passes on
// (RFC 9112 3.2: anything else is answered 400 by tend, not sent to a
// backend that may read it otherwise): an origin-form target, OPTIONS *,
// or an absolute http(s) URI with a host; a Host of URI host characters
// (no space, no control). Found by FuzzLoopRequest on 2026-12-07: "0
// A://000#0 HTTP/1.1" went to the backend, which could not parse it, and a
// Host with a trailing space was routed on one name and read as another.
func sane(method, uri, host []byte) bool {
	switch {
	case len(uri) == 0:
		return false
	case uri[0] == '/':
	case string(uri) == "*":
		if string(method) != "OPTIONS" {
			return false
		}
	default:
		u, err := neturl.ParseRequestURI(string(uri))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return false
		}
	}
	for _, c := range host {
		if !hostByte[c] {
			return false
		}
	}
	return true
}

// hostByte marks the bytes of a URI host and port (RFC 3986 3.2.2:
// unreserved, pct-encoded, sub-delims, and ':' '[' ']').
var hostByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~%!$&'()*+,;=:[]", byte(c)) >= 0
	}
	return t
}()

// bodyLength is a request's body length: -1 when chunked.
func bodyLength(h *fasthttp.RequestHeader) int {
	n := h.ContentLength()
	if n == -2 { // fasthttp's "no length given": no body, for a request
		return 0
	}
	return n
}

// headEnd is the length of the head at the start of buf, blank line
// included; -1 when it is not all there.
func headEnd(buf []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(buf) && buf[i] == '\n' {
			return i + 1
		}
		if i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n' {
			return i + 2
		}
	}
}

// parse reads a complete head into h (a request or response header).
func (ls *loopState) parse(h interface{ Read(*bufio.Reader) error }, head []byte) error {
	ls.src.Reset(head)
	ls.br.Reset(&ls.src)
	return h.Read(ls.br)
}

// chunkedLen is the length of the chunked body at the start of buf, its
// trailer included; -1 while it is not all there.
func chunkedLen(buf []byte) (int, error) {
	i := 0
	for {
		eol := bytes.IndexByte(buf[i:], '\n')
		if eol < 0 {
			return -1, nil
		}
		size, err := chunkSize(buf[i : i+eol+1])
		if err != nil {
			return 0, err
		}
		i += eol + 1
		if size == 0 {
			break
		}
		if int64(len(buf)-i) < size+2 {
			return -1, nil
		}
		i += int(size) + 2
	}
	for { // the trailer, up to its blank line
		eol := bytes.IndexByte(buf[i:], '\n')
		if eol < 0 {
			return -1, nil
		}
		line := buf[i : i+eol+1]
		i += eol + 1
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return i, nil
		}
	}
}

// appendAnswer writes the backend's response head for the client: less
// its hop headers, with Connection as the client's connection needs.
func appendAnswer(dst, head []byte, close, http10 bool) []byte {
	line, rest, _ := bytes.Cut(head, []byte("\n"))
	dst = append(dst, bytes.TrimRight(line, "\r")...)
	dst = appendHeaders(dst, rest, responseHop)
	switch {
	case close:
		dst = append(dst, "\r\nConnection: close"...)
	case http10:
		dst = append(dst, "\r\nConnection: keep-alive"...)
	}
	return append(dst, "\r\n\r\n"...)
}

// appendError writes tend's own short plain-text answer.
func appendError(dst []byte, code int, body []byte, close bool) []byte {
	dst = fmt.Appendf(dst, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n",
		code, fasthttp.StatusMessage(code), len(body))
	if close {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}
