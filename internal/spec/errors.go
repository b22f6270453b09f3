package spec

import (
	"fmt"
	"strings"
)

// Error is an invalid compose file or Project. It says where the problem is, so a user
// can find it, and what is wrong, in one line.
type Error struct {
	File    string // the compose file as the user named it; empty for a Project from the API
	Service string // empty for a problem outside services
	Key     string // the compose key, dotted: deploy.restart_policy.condition
	Message string

	Err error // the underlying error (compose-go's, a file system's), for errors.Is/As
}

// Error renders `file: service "web": key: message`, leaving out empty parts.
func (e *Error) Error() string {
	return location(e.File, e.Service, e.Key) + e.Message
}

// Unwrap returns compose-go's error when the problem was found there.
func (e *Error) Unwrap() error { return e.Err }

// Warning is a key tend reads but does not honour (yet). Load reports each one
// rather than dropping it silently, so a user knows what will not happen.
type Warning struct {
	File    string
	Service string
	Key     string
	Message string
}

// String renders `file: service "web": key: message`, leaving out empty parts.
func (w Warning) String() string {
	return location(w.File, w.Service, w.Key) + w.Message
}

func location(file, service, key string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file + ": ")
	}
	if service != "" {
		fmt.Fprintf(&b, "service %q: ", service)
	}
	if key != "" {
		b.WriteString(key + ": ")
	}
	return b.String()
}

// errorf builds an Error about one key of one service; Load adds the file.
func errorf(service, key, format string, args ...any) *Error {
	return &Error{Service: service, Key: key, Message: fmt.Sprintf(format, args...)}
}
