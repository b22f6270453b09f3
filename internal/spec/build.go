package spec

import (
	"fmt"
	"maps"
	"path"
)

// Build is a service's build section: how tend makes the service's image (tagged
// Service.Image) when it is missing, or always with `tend up --build` and `tend build`.
// The build runs on the host of the daemon, which reads Context there, as it reads
// the sources of bind mounts.
type Build struct {
	Context string `json:"context"` // the absolute path of the context directory
	// Dockerfile is the path of the Dockerfile, relative to Context unless absolute;
	// it may lie outside Context. Empty when DockerfileInline is set.
	Dockerfile       string            `json:"dockerfile,omitempty"`
	DockerfileInline string            `json:"dockerfile_inline,omitempty"` // the Dockerfile itself
	Args             map[string]string `json:"args,omitempty"`              // build arguments; an argument without a value is left out (the Dockerfile's default applies)
	Target           string            `json:"target,omitempty"`            // the stage to build; empty: the last
	Labels           map[string]string `json:"labels,omitempty"`            // labels of the image
	// ImageID is the ID of the image the section built or found, set by `tend up`
	// just before it hands the project over. The hash of the service takes this
	// ID, not the section: a rebuilt image replaces the replicas, and a changed
	// section that was not rebuilt does not.
	ImageID string `json:"image_id,omitempty"`
}

// hashed is what of b goes into the hash of its service.
func (b *Build) hashed() *Build {
	if b == nil {
		return nil
	}
	return &Build{ImageID: b.ImageID}
}

// Same reports whether a and b build the same image: the same section, whatever
// image ID either has found.
func (b *Build) Same(o *Build) bool {
	if b == nil || o == nil {
		return b == o
	}
	return b.Context == o.Context && b.Dockerfile == o.Dockerfile && b.DockerfileInline == o.DockerfileInline &&
		b.Target == o.Target && maps.Equal(b.Args, o.Args) && maps.Equal(b.Labels, o.Labels)
}

// CheckBuild checks the build section of the service named service, for a build
// asked for on its own (tend build); Validate checks the sections of a Project.
func CheckBuild(service string, b *Build) error {
	if b == nil {
		return errorf(service, "build", "required")
	}
	if err := checkBuildSection(service, b); err != nil {
		return err
	}
	return nil
}

func checkBuildSection(service string, b *Build) *Error {
	switch {
	case b.Context == "":
		return errorf(service, "build.context", "required")
	case !path.IsAbs(b.Context):
		return errorf(service, "build.context", "%q is not an absolute path", b.Context)
	case b.Dockerfile == "" && b.DockerfileInline == "":
		return errorf(service, "build.dockerfile", "required (or dockerfile_inline)")
	case b.Dockerfile != "" && b.DockerfileInline != "":
		return errorf(service, "build", "dockerfile and dockerfile_inline are mutually exclusive")
	}
	for k := range b.Args {
		if k == "" {
			return errorf(service, "build.args", "an argument has no name")
		}
	}
	for k := range b.Labels {
		if k == "" {
			return errorf(service, "build.labels", "a label has no name")
		}
	}
	return nil
}

// checkBuild checks a service's build section, and that no other service builds
// the same image from a different section: one tag cannot hold two images.
func checkBuild(p *Project, s *Service) *Error {
	if s.Build == nil {
		return nil
	}
	if err := checkBuildSection(s.Name, s.Build); err != nil {
		return err
	}
	for _, o := range p.Services {
		if o.Name < s.Name && o.Image == s.Image && o.Build != nil && !o.Build.Same(s.Build) {
			return errorf(s.Name, "build", "image %s is also built by service %q, from a different build section", s.Image, o.Name)
		}
	}
	return nil
}

// String names the section for a person: the context and the Dockerfile.
func (b *Build) String() string {
	if b.DockerfileInline != "" {
		return fmt.Sprintf("%s (inline Dockerfile)", b.Context)
	}
	return fmt.Sprintf("%s (%s)", b.Context, b.Dockerfile)
}
