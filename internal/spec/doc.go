// Package spec owns tend's desired-state vocabulary and the compose loader that produces it.
//
// A Project is plain data: the store versions it, the API carries it as JSON, and the
// reconciler compares it with what runs. Load reads compose files (through compose-go),
// maps every key tend honours onto a Project, reports every key it does not honour as a
// Warning, and rejects anything it cannot run with an Error that names the file, the
// service and the key. Validate checks a Project however it arrived; Load calls it too,
// so a loaded Project is always valid and complete (defaults filled in). The compose
// keys tend honours are listed once, in serviceRules and projectRules (warnings.go).
//
//	p, warnings, err := spec.Load(ctx, spec.LoadOptions{Files: []string{"compose.yaml"}, Environ: os.Environ()})
//
// spec sits at the centre: it must not import the Docker SDK, the network, or tend's
// runtime, store or clock packages (internal/arch_test.go enforces it); internal/errs,
// for the kind of Error, is its only tend import. Its only I/O is Load reading compose,
// .env and env_file files.
package spec
