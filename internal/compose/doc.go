// Package compose reads compose files into a spec.Project: the adapter between
// the compose format (through compose-go v2: interpolation, .env, env_file,
// profiles, several -f files) and tend's desired state.
//
// Load maps every key tend honours onto the Project, reports every key it does
// not honour as a spec.Warning, and rejects anything it cannot run with a
// spec.Error naming the file, the service and the key; it ends with
// spec.Validate, so a loaded Project is valid and complete (defaults filled in).
// The keys tend honours are listed once, in serviceRules and projectRules
// (warnings.go). Its only I/O is reading compose, .env and env_file files, and
// checking that the files of secrets and configs exist.
//
//	p, warnings, err := compose.Load(ctx, compose.LoadOptions{Files: []string{"compose.yaml"}, Environ: os.Environ()})
package compose
