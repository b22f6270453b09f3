package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"
)

// formatFuncs are the functions a --format template may call, as docker's do.
var formatFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"truncate": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n])
		}
		return s
	},
}

// parseFormat compiles a --format template (Go's text/template over the
// fields of each item, e.g. '{{.Service}}/{{.Slot}} {{.State}}'); nil for none.
// --format and --json do not go together.
func parseFormat(text string, asJSON bool) (*template.Template, error) {
	if text == "" {
		return nil, nil
	}
	if asJSON {
		return nil, usageError{errors.New("--format and --json do not go together")}
	}
	t, err := template.New("format").Funcs(formatFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, usageError{fmt.Errorf("--format: %w", err)}
	}
	return t, nil
}

// printFormatted writes v with t and a newline.
func printFormatted(w io.Writer, t *template.Template, v any) error {
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return usageError{fmt.Errorf("--format: %w", err)}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
