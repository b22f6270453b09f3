package supervisor

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
)

// BuildRequest asks for the image of one service with a build section.
type BuildRequest struct {
	Project string     `json:"project"`
	Service string     `json:"service"`
	Image   string     `json:"image"` // the tag to build
	Build   spec.Build `json:"build"`
	// Always builds even when the image exists (tend up --build, tend build);
	// otherwise an existing image is used as it is.
	Always bool `json:"always,omitempty"`
}

// BuildResult is the image a BuildRequest ended with.
type BuildResult struct {
	ID    string `json:"id"`
	Built bool   `json:"built"` // false: the image existed and was not rebuilt
}

// Build makes the image of one service, unless it exists and the request does
// not insist, and journals the build. The output goes to progress as the engine
// writes it. A build changes no replica: the project's next `up` hands over the
// image ID, and replicas whose image changed are replaced then.
func (s *Supervisor) Build(ctx context.Context, req BuildRequest, progress io.Writer) (BuildResult, error) {
	if err := req.check(); err != nil {
		return BuildResult{}, err
	}
	before, err := s.cfg.Runtime.ImageID(ctx, req.Image)
	if err != nil {
		return BuildResult{}, err
	}
	reason := "requested"
	switch {
	case before != "" && !req.Always:
		return BuildResult{ID: before}, nil
	case before == "":
		reason = "missing"
	}
	start := s.cfg.Clock.Now()
	id, err := s.cfg.Runtime.Build(ctx, req.Image, req.Build, progress)
	e := store.Entry{Project: req.Project, Service: req.Service, Action: "build", Reason: reason}
	if err != nil {
		err = fmt.Errorf("service %q: build: %w", req.Service, err)
		e.Message, e.Error = fmt.Sprintf("build of image %s from %s failed", req.Image, req.Build.String()), err.Error()
		s.journal(e)
		return BuildResult{}, err
	}
	took := s.cfg.Clock.Now().Sub(start).Round(10 * time.Millisecond)
	e.Message = fmt.Sprintf("built image %s (%s) from %s in %s", req.Image, shortImageID(id), req.Build.String(), took)
	if id == before {
		e.Message += ", unchanged" // every step came from the engine's cache: no replica will be replaced
	}
	s.journal(e)
	return BuildResult{ID: id, Built: true}, nil
}

func (r BuildRequest) check() error {
	switch {
	case !spec.ValidProjectName(r.Project):
		return errs.E(errs.Invalid, "build: invalid project name %q", r.Project)
	case r.Service == "":
		return errs.E(errs.Invalid, "build: no service named")
	case r.Image == "":
		return errs.E(errs.Invalid, "build: service %q: no image to tag", r.Service)
	}
	return spec.CheckBuild(r.Service, &r.Build)
}

// shortImageID is an image ID as the docker CLI shows it: 12 hex digits.
func shortImageID(id string) string {
	if len(id) > 7+12 && id[:7] == "sha256:" {
		return id[7 : 7+12]
	}
	return id
}
