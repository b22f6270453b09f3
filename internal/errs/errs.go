// Package errs holds the few kinds of error tend tells apart. Each is mapped
// once to an HTTP status (internal/api) and once to an exit code (cmd/tend);
// everything else is internal.
package errs

import (
	"errors"
	"fmt"
)

// Kind is a class of failure a caller can act on.
type Kind string

const (
	Internal    Kind = "internal"    // tend's fault; details are in the daemon's log
	Invalid     Kind = "invalid"     // the input is wrong; the message says how
	NotFound    Kind = "not-found"   // the thing named does not exist
	Conflict    Kind = "conflict"    // the request clashes with the current state
	Unavailable Kind = "unavailable" // a dependency (the engine, the daemon) cannot be reached

	Unauthenticated Kind = "unauthenticated" // a TCP request without a valid token
	Forbidden       Kind = "forbidden"       // a valid token whose role does not allow the request
)

// Error is an error of a known kind.
type Error struct {
	Kind Kind
	Msg  string
	Err  error // the cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil && e.Msg == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorKind lets errors of other packages (such as spec.Error) declare their kind.
func (e *Error) ErrorKind() Kind { return e.Kind }

// E makes an error of kind k with a formatted message.
func E(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap gives err the kind k, keeping its message.
func Wrap(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Err: err}
}

// KindOf is the kind of the first error in err's chain that declares one, else Internal.
func KindOf(err error) Kind {
	var k interface{ ErrorKind() Kind }
	if errors.As(err, &k) {
		return k.ErrorKind()
	}
	return Internal
}
