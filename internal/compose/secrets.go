package compose

import (
	"os"
	"path"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/tend-sh/tend/internal/spec"
)

// fileKind tells secrets from configs: both are files bind-mounted read-only, as
// docker compose does without swarm, but they live in different places.
type fileKind struct {
	key  string // the compose key: secrets or configs
	noun string // secret or config
	dir  string // where a target that is not an absolute path goes
}

var (
	secretFiles = fileKind{key: "secrets", noun: "secret", dir: "/run/secrets/"}
	configFiles = fileKind{key: "configs", noun: "config", dir: "/"}
)

// secrets maps a service's secrets. Only file-based ones are honoured: a secret
// taken from the environment would have to be stored in tend's desired state to
// be delivered, and tend keeps no secret values. The file must exist.
func secrets(cp *types.Project, sc types.ServiceConfig) ([]spec.FileMount, error) {
	var out []spec.FileMount
	for _, ref := range sc.Secrets {
		def, declared := cp.Secrets[ref.Source]
		m, err := fileMount(cp, sc.Name, secretFiles, types.FileReferenceConfig(ref), types.FileObjectConfig(def), declared)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// configs maps a service's configs, file-based only, like secrets.
func configs(cp *types.Project, sc types.ServiceConfig) ([]spec.FileMount, error) {
	var out []spec.FileMount
	for _, ref := range sc.Configs {
		def, declared := cp.Configs[ref.Source]
		m, err := fileMount(cp, sc.Name, configFiles, types.FileReferenceConfig(ref), types.FileObjectConfig(def), declared)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// fileMount resolves one service reference against its top-level declaration.
// Messages name the environment variable of an environment-sourced secret,
// never its value.
func fileMount(cp *types.Project, service string, k fileKind, ref types.FileReferenceConfig, def types.FileObjectConfig, declared bool) (spec.FileMount, error) {
	name := ref.Source
	fail := func(format string, args ...any) (spec.FileMount, error) {
		return spec.FileMount{}, errorf(service, k.key, "%s %q"+format, append([]any{k.noun, name}, args...)...)
	}
	switch {
	case !declared:
		return fail(" is not declared under top-level %s", k.key)
	case bool(def.External):
		return fail(" is external; tend mounts only file-based %s (file:)", k.key)
	case def.Environment != "":
		return fail(" comes from the environment variable %s; tend mounts only file-based %s (file:)", def.Environment, k.key)
	case def.Content != "":
		return fail(" has inline content; tend mounts only file-based %s (file:)", k.key)
	case def.File == "":
		return fail(" has no file")
	}
	src := def.File
	if !filepath.IsAbs(src) {
		src = filepath.Join(cp.WorkingDir, src)
	}
	if _, err := os.Stat(src); err != nil {
		return fail(": cannot read %s: %s", relative(cp.WorkingDir, src), reason(err))
	}
	target := ref.Target
	switch {
	case target == "":
		target = k.dir + name
	case !path.IsAbs(target):
		target = k.dir + target
	}
	return spec.FileMount{Name: name, Source: src, Target: target}, nil
}

// relative shows path relative to the project directory when it is inside it.
func relative(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return path
}
