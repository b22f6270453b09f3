package api

import (
	"maps"
	"slices"

	"github.com/tend-sh/tend/internal/store"
)

// Redacted stands for a value the API never shows.
const Redacted = "(redacted)"

// redact is rec as the API shows it: the values of the services'
// environment and build arguments, where passwords and keys live in compose
// files, replaced by Redacted (their names stay). Secrets and configs need
// nothing here: tend keeps only their paths (spec.FileMount).
func redact(rec store.Record) store.Record {
	rec.Project.Services = slices.Clone(rec.Project.Services)
	for i := range rec.Project.Services {
		s := &rec.Project.Services[i]
		s.Environment = redactValues(s.Environment)
		if s.Build != nil {
			b := *s.Build
			b.Args = redactValues(b.Args)
			s.Build = &b
		}
	}
	return rec
}

func redactValues(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := maps.Clone(m)
	for k := range out {
		out[k] = Redacted
	}
	return out
}
