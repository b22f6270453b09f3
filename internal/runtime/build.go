package runtime

import (
	"strings"

	"github.com/tend-sh/tend/internal/errs"
)

// BuildError is a build that failed for what it was given: a Dockerfile step
// that failed, a Dockerfile the engine could not parse, a context it could not
// read. The fix is in the user's files, so it is an invalid-input error.
type BuildError struct {
	// Step is the step the engine was running, as it numbers and writes it:
	// "2/3 : COPY app /app". Empty when the build failed before its first step.
	Step    string
	Message string // the engine's words
}

// Error renders `step 2/3 (COPY app /app): <message>`, or the message alone.
func (e *BuildError) Error() string {
	if e.Step == "" {
		return e.Message
	}
	num, instr, ok := strings.Cut(e.Step, " : ")
	if !ok {
		return "step " + e.Step + ": " + e.Message
	}
	return "step " + num + " (" + instr + "): " + e.Message
}

// ErrorKind makes a failed build invalid input for the API and the CLI.
func (e *BuildError) ErrorKind() errs.Kind { return errs.Invalid }
