package spec

import "github.com/tend-sh/tend/internal/errs"

// ErrorKind makes every spec error an invalid-input error for the API and the CLI.
func (e *Error) ErrorKind() errs.Kind { return errs.Invalid }
