package compose

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/tend-sh/tend/internal/spec"
)

// errorf builds an Error about one key of one service; Load adds the file.
func errorf(service, key, format string, args ...any) *spec.Error {
	return &spec.Error{Service: service, Key: key, Message: fmt.Sprintf(format, args...)}
}

// notHonoured is the one wording of a warning for a key tend ignores.
func notHonoured(service, key string) spec.Warning {
	return spec.Warning{Service: service, Key: key, Message: "not honoured by tend, ignored"}
}

// inFile names file in err when err is an *Error that does not name one yet.
func inFile(err error, file string) error {
	var e *spec.Error
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

// splitExtends moves the service of compose-go's `cannot extend service "app" in
// FILE: REASON` into Service and Key, and names FILE in the message only when it is
// another file than the error's.
func splitExtends(e *spec.Error) {
	rest, ok := strings.CutPrefix(e.Message, "cannot extend service ")
	if !ok {
		return
	}
	service, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return
	}
	file, reason, ok := strings.Cut(strings.TrimPrefix(rest[len(service):], " in "), ": ")
	if !ok {
		return
	}
	e.Service, _ = strconv.Unquote(service)
	e.Key, e.Message = "extends", reason
	if file != e.File {
		e.Message += " in " + file
	}
}
