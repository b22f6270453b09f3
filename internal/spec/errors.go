package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Error is an invalid compose file or Project. It says where the problem is, so a user
// can find it, and what is wrong, in one line.
type Error struct {
	File    string // the compose file as the user named it; empty for a Project from the API
	Service string // empty for a problem outside services
	Key     string // the compose key, dotted: deploy.restart_policy.condition
	Message string

	cause error // compose-go's error when it is the origin, for errors.Is/As
}

// Error renders `file: service "web": key: message`, leaving out empty parts.
func (e *Error) Error() string {
	return location(e.File, e.Service, e.Key) + e.Message
}

// Unwrap returns compose-go's error when the problem was found there.
func (e *Error) Unwrap() error { return e.cause }

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

// notHonoured is the one wording of a warning for a key tend ignores.
func notHonoured(service, key string) Warning {
	return Warning{Service: service, Key: key, Message: "not honoured by tend, ignored"}
}

// inFile names file in err when err is an *Error that does not name one yet.
func inFile(err error, file string) error {
	var e *Error
	if errors.As(err, &e) && e.File == "" {
		e.File = file
	}
	return err
}

// reason is the system's words for a failed file operation, without the path that
// the message around it already names.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// oneLine folds a multi-line message (compose-go joins errors with newlines) so
// that every error tend prints is one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
