package compose

import (
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/tend-sh/tend/internal/spec"
)

// imageAndBuild picks a service's image and converts its build section. The
// image is image: when set, else compose's name for a built image,
// <project>-<service>. tend builds from a local directory only; the context and
// the Dockerfile must exist when the file is loaded, so a typo fails before
// anything runs.
func imageAndBuild(cp *types.Project, sc types.ServiceConfig) (string, *spec.Build, error) {
	if sc.Build == nil {
		if sc.Image == "" && sc.Provider != nil {
			return "", nil, errorf(sc.Name, "provider", "a provider service (type %q) is run by a docker compose plugin, not by a container; tend runs containers only: run the provider's resource outside tend and give the services its address", sc.Provider.Type)
		}
		if sc.Image == "" {
			return "", nil, errorf(sc.Name, "image", "required")
		}
		return sc.Image, nil, nil
	}
	image := sc.Image
	if image == "" {
		image = cp.Name + "-" + sc.Name
	}
	b, err := convertBuild(cp.WorkingDir, sc.Name, sc.Build)
	return image, b, err
}

// convertBuild maps a build section. compose-go has made a local context
// absolute (against the project directory) and defaulted dockerfile to
// "Dockerfile"; a context it left relative is remote (a git or http URL).
func convertBuild(workDir, service string, bc *types.BuildConfig) (*spec.Build, error) {
	if !filepath.IsAbs(bc.Context) {
		return nil, errorf(service, "build.context", "%q is a remote context; tend builds from local directories only: clone it (git clone) and give build.context the directory", bc.Context)
	}
	shown := func(p string) string {
		if rel, err := filepath.Rel(workDir, p); err == nil && filepath.IsLocal(rel) {
			return rel
		}
		return p
	}
	fi, err := os.Stat(bc.Context)
	switch {
	case err != nil:
		return nil, errorf(service, "build.context", "cannot read %s: %s", shown(bc.Context), reason(err))
	case !fi.IsDir():
		return nil, errorf(service, "build.context", "%s is not a directory", shown(bc.Context))
	}
	b := &spec.Build{
		Context:          bc.Context,
		Dockerfile:       bc.Dockerfile,
		DockerfileInline: bc.DockerfileInline,
		Target:           bc.Target,
		Labels:           nonEmpty(bc.Labels),
		Args:             environment(bc.Args), // an argument without a value keeps the Dockerfile's default
	}
	if b.Dockerfile == "" && b.DockerfileInline == "" {
		b.Dockerfile = "Dockerfile" // an empty dockerfile (an unset variable) is the engine's default, as in compose
	}
	if b.Dockerfile != "" {
		file := b.Dockerfile
		if !filepath.IsAbs(file) {
			file = filepath.Join(b.Context, file)
		}
		fi, err := os.Stat(file)
		switch {
		case err != nil:
			return nil, errorf(service, "build.dockerfile", "cannot read %s: %s", shown(file), reason(err))
		case !fi.Mode().IsRegular():
			return nil, errorf(service, "build.dockerfile", "%s is not a file", shown(file))
		}
	}
	return b, nil
}
