// Package spec owns tend's desired-state vocabulary.
//
// A Project is plain data: the store versions it, the API carries it as JSON, and the
// planner compares it with what runs. Validate checks a Project however it arrived (from
// a compose file through internal/compose, or over the API) and rejects it with an Error
// that names the file, the service and the key.
//
// spec sits at the centre and does no I/O: it must not import compose-go, the Docker
// SDK, the network, or tend's runtime, store or clock packages (internal/arch_test.go
// enforces it, transitively); internal/errs, for the kind of Error, is its only tend import.
package spec
