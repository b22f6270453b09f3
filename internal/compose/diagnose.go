package compose

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"gopkg.in/yaml.v3"

	"github.com/tend-sh/tend/internal/spec"
)

// diagnose looks again, after compose-go failed, for a fault whose service compose-go's
// message does not name. Each probe reloads with the failing step left out and looks
// for the fault itself. It returns nil when none is found; the caller then reports
// compose-go's own error. It runs on the error path only.
func diagnose(ctx context.Context, o LoadOptions, paths []string) error {
	if err := diagnosePorts(ctx, o, paths); err != nil {
		return err
	}
	return diagnoseEnvFiles(ctx, o, paths)
}

// diagnosePorts finds a short-syntax port compose-go rejected ("invalid hostPort:
// 99999"). Without interpolation compose-go keeps a port it cannot parse as written;
// the probe substitutes variables as compose-go would and checks each entry.
func diagnosePorts(ctx context.Context, o LoadOptions, paths []string) error {
	opts, err := composeOptions(o, paths, cli.WithInterpolation(false), cli.WithLoadOptions(loader.WithSkipValidation))
	if err != nil {
		return nil
	}
	model, err := loadModel(ctx, opts)
	if err != nil {
		return nil
	}
	lookup := func(k string) (string, bool) {
		v, ok := opts.Environment[k]
		return v, ok
	}
	services, _ := model["services"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(services)) {
		svc, _ := services[name].(map[string]any)
		entries, _ := svc["ports"].([]any)
		for _, entry := range entries {
			spec, ok := portSpec(entry, lookup)
			if !ok {
				continue
			}
			if err := checkPortSpec(spec); err != nil {
				return errorf(name, "ports", "%v", err)
			}
		}
	}
	return nil
}

// diagnoseEnvFiles finds the service whose env_file compose-go could not read.
func diagnoseEnvFiles(ctx context.Context, o LoadOptions, paths []string) error {
	opts, err := composeOptions(o, paths, cli.WithoutEnvironmentResolution)
	if err != nil {
		return nil
	}
	cp, err := loadProject(ctx, opts)
	if err != nil {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(cp.Services)) {
		for _, f := range cp.Services[name].EnvFiles {
			if _, err := os.Stat(f.Path); err != nil && f.Required {
				shown := f.Path
				if rel, rerr := filepath.Rel(cp.WorkingDir, f.Path); rerr == nil {
					shown = rel
				}
				return errorf(name, "env_file", "cannot read %s: %s", shown, reason(err))
			}
		}
	}
	return nil
}

// loadModel is compose-go's LoadModel with a panic turned into an error (see loadProject):
// a probe that cannot read the file has found nothing.
func loadModel(ctx context.Context, opts *cli.ProjectOptions) (model map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			model, err = nil, fmt.Errorf("compose-go failed on this file: %v", r)
		}
	}()
	return opts.LoadModel(ctx)
}

// diagnoseMissingFile names the key behind compose-go's bare "open PATH: no such
// file or directory" (an extends file, an include, a label_file): it finds the key
// of the files whose value is that path. Only the YAML is read, not compose-go's model,
// so a file compose-go cannot normalize is still searched.
func diagnoseMissingFile(err error, o LoadOptions, paths []string) error {
	m := missingFileRE.FindStringSubmatch(oneLine(err.Error()))
	if m == nil {
		return nil
	}
	missing, why := m[1], m[2]
	dir := projectDir(o, paths)
	for _, raw := range rawDocs(paths) {
		if at := findPath(raw.doc, nil, func(v string) bool {
			return v == missing || filepath.Join(dir, v) == filepath.Clean(missing)
		}); at != nil {
			e := keyError(at, fmt.Sprintf("cannot read %s: %s", relative(dir, missing), why))
			e.File = raw.path
			return e
		}
	}
	return nil
}

// diagnoseMount names the service of compose-go's `invalid mount config for type
// "bind": field Source must not be empty`.
func diagnoseMount(err error, paths []string) error {
	m := mountRE.FindStringSubmatch(oneLine(err.Error()))
	if m == nil {
		return nil
	}
	for _, raw := range rawDocs(paths) {
		services, _ := raw.doc.(map[string]any)["services"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(services)) {
			svc, _ := services[name].(map[string]any)
			vols, _ := svc["volumes"].([]any)
			for i, v := range vols {
				if v, ok := v.(map[string]any); ok && v["type"] == m[1] && (v["source"] == nil || v["source"] == "") {
					e := errorf(name, "volumes."+strconv.Itoa(i), "a %s mount needs a source", m[1])
					e.File = raw.path
					return e
				}
			}
		}
	}
	return nil
}

var mountRE = regexp.MustCompile(`^invalid mount config for type "([a-z]+)": field Source must not be empty$`)

// rawDoc is a compose file as plain YAML.
type rawDoc struct {
	path string
	doc  any
}

// rawDocs are the compose files that parse as YAML.
func rawDocs(paths []string) []rawDoc {
	var docs []rawDoc
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var doc any
		if yaml.Unmarshal(b, &doc) == nil {
			docs = append(docs, rawDoc{path, doc})
		}
	}
	return docs
}

// projectDir is the absolute directory relative paths of the files resolve against.
func projectDir(o LoadOptions, paths []string) string {
	dir := o.WorkingDir
	if dir == "" {
		dir = filepath.Dir(paths[0])
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	return abs
}

// missingFileRE is Go's wording of a failed open or stat, at the end of compose-go's message.
var missingFileRE = regexp.MustCompile(`(?:open|stat|lstat) (\S+): ([^:]+)$`)

// findPath is the key path (names and list indexes) of the first string in doc
// that match accepts, in the order of sorted keys.
func findPath(doc any, at []string, match func(string) bool) []string {
	switch v := doc.(type) {
	case string:
		if match(v) {
			return at
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if p := findPath(v[k], append(slices.Clip(at), k), match); p != nil {
				return p
			}
		}
	case []any:
		for i, e := range v {
			if p := findPath(e, append(slices.Clip(at), strconv.Itoa(i)), match); p != nil {
				return p
			}
		}
	}
	return nil
}

// keyError is an Error about the key at path: services.NAME.KEY... names the
// service. A list index at the end (the second env_file of a list) is left out.
func keyError(path []string, msg string) *spec.Error {
	for len(path) > 1 {
		if _, err := strconv.Atoi(path[len(path)-1]); err != nil {
			break
		}
		path = path[:len(path)-1]
	}
	if len(path) > 2 && path[0] == "services" {
		return errorf(path[1], strings.Join(path[2:], "."), "%s", msg)
	}
	return &spec.Error{Key: strings.Join(path, "."), Message: msg}
}
