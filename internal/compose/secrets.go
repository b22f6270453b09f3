package compose

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"

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

// secrets maps a service's secrets: from a file (which must exist), from an
// environment variable, or inline content. A value is held in FileMount.Content
// and goes to a file under valueDir named by its digest (WriteValues writes it);
// so a changed value is a changed spec, and tend stores only the path.
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

// configs maps a service's configs, like secrets.
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
		return fail(" is external (kept by a swarm or another store tend cannot read, and docker compose up refuses it too); declare it with file:, environment: or content:")
	case def.File == "" && def.Environment == "" && def.Content == "":
		return fail(" has no file, environment or content")
	}
	target := ref.Target
	switch {
	case target == "":
		target = k.dir + name
	case !path.IsAbs(target):
		target = k.dir + target
	}
	if def.File == "" {
		return valueMount(cp, name, target, def, fail)
	}
	src := def.File
	if !filepath.IsAbs(src) {
		src = filepath.Join(cp.WorkingDir, src)
	}
	if _, err := os.Stat(src); err != nil {
		return fail(": cannot read %s: %s", relative(cp.WorkingDir, src), reason(err))
	}
	return spec.FileMount{Name: name, Source: src, Target: target}, nil
}

// valueMount is a secret or config whose value the file holds (content:) or the
// environment does (environment:). Messages name the variable, never the value.
func valueMount(cp *types.Project, name, target string, def types.FileObjectConfig, fail func(string, ...any) (spec.FileMount, error)) (spec.FileMount, error) {
	m := spec.FileMount{Name: name, Target: target, From: "content", Content: []byte(def.Content)}
	if def.Environment != "" {
		v, ok := cp.Environment[def.Environment]
		if !ok {
			return fail(" comes from the environment variable %s, which is not set", def.Environment)
		}
		m.From, m.Content = "environment "+def.Environment, []byte(v)
	}
	key, err := valueKey(valueDir())
	if err != nil {
		return fail(": %v", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(m.Content)
	m.Source = filepath.Join(valueDir(), hex.EncodeToString(mac.Sum(nil)[:16]))
	return m, nil
}

// valueKey is the random key of the user's value directory, made on first use. A
// file's name is the keyed digest of its value: a plain digest in tend's store,
// journal and API would let anyone who reads them test guesses at a short secret.
// Names stay the same from one `tend up` to the next (an unchanged value replaces
// nothing) for as long as the tmpfs keeps the key.
func valueKey(dir string) ([]byte, error) {
	if err := privateDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "key")
	if key, err := os.ReadFile(path); err == nil && len(key) == 32 {
		return key, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(key)
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		return nil, errors.Join(werr, cerr)
	}
	// Link, not rename: of two tend ups making the key at once, the first wins and
	// the other reads it.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	key, err = os.ReadFile(path)
	if err == nil && len(key) != 32 {
		err = fmt.Errorf("%s is damaged (%d bytes); remove it and run tend up again", path, len(key))
	}
	return key, err
}

// privateDir makes dir (0700) or checks that the one there is the user's alone:
// /dev/shm is shared by every user of the host, and a directory another user made
// there under this name would let that user read the values.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is not a directory of yours alone (mode %v); remove it and run tend up again", dir, fi.Mode())
	}
	return nil
}

// valueDir is where the values of secrets and configs from the environment or
// inline content are written for the engine to mount: a directory of the user's
// own on a tmpfs, so that no value is ever written to a disk. After a reboot the
// files are gone and `tend up` writes them again.
func valueDir() string {
	return fmt.Sprintf("/dev/shm/tend-values-%d", os.Getuid())
}

// WriteValues writes the values of p's secrets and configs that come from the
// environment or inline content to their files. The directory is the user's alone
// (0700), so no other user of the host reads them; the file is 0444, as compose
// gives such secrets, so that a container running as another user reads its own.
// A file already there holds the same value: its name is the value's keyed digest.
func WriteValues(p *spec.Project) error {
	for _, s := range p.Services {
		for _, m := range slices.Concat(s.Secrets, s.Configs) {
			if m.From == "" {
				continue
			}
			if err := writeValue(m); err != nil {
				return fmt.Errorf("service %s: %s %s: %w", s.Name, m.From, m.Name, err)
			}
		}
	}
	return nil
}

func writeValue(m spec.FileMount) error {
	if err := privateDir(filepath.Dir(m.Source)); err != nil {
		return err
	}
	if _, err := os.Stat(m.Source); err == nil {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(m.Source), ".value-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(m.Content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o444); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), m.Source) // whole or not at all, for a replica starting meanwhile
}

// relative shows path relative to the project directory when it is inside it.
func relative(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return path
}
