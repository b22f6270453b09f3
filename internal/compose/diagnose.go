package compose

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
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
	model, err := opts.LoadModel(ctx)
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
	cp, err := opts.LoadProject(ctx)
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
