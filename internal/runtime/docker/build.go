package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// ImageID returns the ID of the image ref names, or "" when the engine has none.
func (d *Docker) ImageID(ctx context.Context, ref string) (string, error) {
	res, err := d.c.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("docker: inspect image %s: %w", ref, err)
	}
	return res.ID, nil
}

// ImageHealthcheck says whether the image ref defines a HEALTHCHECK (one of NONE does not count).
func (d *Docker) ImageHealthcheck(ctx context.Context, ref string) (has, found bool, err error) {
	res, err := d.c.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("docker: inspect image %s: %w", ref, err)
	}
	h := res.Config
	return h != nil && h.Healthcheck != nil && len(h.Healthcheck.Test) > 0 && h.Healthcheck.Test[0] != "NONE", true, nil
}

// Build sends b's context to the engine's classic builder (no BuildKit session
// needed, and the one every engine from API 1.41 on has) and follows its output.
// The context is archived while it is sent, as the docker CLI does.
func (d *Docker) Build(ctx context.Context, image string, b spec.Build, progress io.Writer) (string, error) {
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		return "", &runtime.BuildError{Message: fmt.Sprintf("image name %q: %v", image, err)}
	}
	bc, err := newBuildContext(b)
	if err != nil {
		return "", &runtime.BuildError{Message: err.Error()}
	}
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go sendContext(bc, pw, sent)
	id, err := d.runBuild(ctx, pr, buildOptions(image, b, bc.dockerfile), progress)
	pr.Close() // the writer stops if the engine stopped reading
	if serr := <-sent; serr != nil {
		// The engine saw a broken archive; the reason is here.
		return "", &runtime.BuildError{Message: fmt.Sprintf("context %s: %v", b.Context, serr)}
	}
	if err != nil {
		return "", err
	}
	if id == "" { // engines that do not say it in the stream
		if id, err = d.ImageID(ctx, image); err == nil && id == "" {
			err = fmt.Errorf("docker: build %s: the engine reported success but has no such image", image)
		}
	}
	return id, err
}

// sendContext archives bc into pw and reports a failure to read the context.
// A failure to write is not one: the engine (or the request) stopped reading,
// and the build's own answer says why.
func sendContext(bc *buildContext, pw *io.PipeWriter, sent chan<- error) {
	w := &sink{w: pw}
	err := bc.write(w)
	pw.CloseWithError(err)
	if w.failed {
		err = nil
	}
	sent <- err
}

// sink notes whether a write failed.
type sink struct {
	w      io.Writer
	failed bool
}

func (s *sink) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.failed = s.failed || err != nil
	return n, err
}

func (d *Docker) runBuild(ctx context.Context, body io.Reader, opts client.ImageBuildOptions, progress io.Writer) (string, error) {
	res, err := d.c.ImageBuild(ctx, body, opts)
	switch {
	case ctx.Err() != nil:
		return "", fmt.Errorf("docker: build %s: %w", opts.Tags[0], ctx.Err())
	case cerrdefs.IsInvalidArgument(err):
		// The engine refused the request: a Dockerfile it cannot parse, a bad option.
		return "", &runtime.BuildError{Message: strings.TrimPrefix(err.Error(), "Error response from daemon: ")}
	case err != nil:
		return "", fmt.Errorf("docker: build %s: %w", opts.Tags[0], err)
	}
	defer res.Body.Close()
	id, err := followBuild(res.Body, progress)
	if err != nil && ctx.Err() != nil {
		return "", fmt.Errorf("docker: build %s: %w", opts.Tags[0], ctx.Err())
	}
	return id, err
}

// buildOptions are the engine's options for building b as image, whose
// Dockerfile is at dockerfile in the archive sent.
func buildOptions(image string, b spec.Build, dockerfile string) client.ImageBuildOptions {
	var args map[string]*string
	if len(b.Args) > 0 {
		args = make(map[string]*string, len(b.Args))
		for k, v := range b.Args {
			args[k] = &v
		}
	}
	return client.ImageBuildOptions{
		Tags:       []string{image},
		Dockerfile: dockerfile,
		BuildArgs:  args,
		Target:     b.Target,
		Labels:     b.Labels,
		// Intermediate containers go, even those of a failed step: a failed
		// build leaves nothing behind but its cached layers.
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	}
}

// buildMessage is one line of the classic builder's JSON stream.
type buildMessage struct {
	Stream      string          `json:"stream"`
	Status      string          `json:"status"` // pulling a base image
	ID          string          `json:"id"`
	Progress    json.RawMessage `json:"progressDetail"`
	Error       string          `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"` // {"ID": "sha256:..."} once the image is built
}

// followBuild copies the build's output to progress as it comes and returns the
// image ID the stream ends with, or the failure as a *runtime.BuildError naming
// the step that failed.
func followBuild(r io.Reader, progress io.Writer) (string, error) {
	dec := json.NewDecoder(r)
	var step, id string
	for {
		var m buildMessage
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return id, nil
		}
		if err != nil {
			return "", fmt.Errorf("docker: read build output: %w", err)
		}
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			return "", &runtime.BuildError{Step: step, Message: msg}
		}
		if s, ok := parseStep(m.Stream); ok {
			step = s
		}
		switch {
		case m.Stream != "":
			_, _ = io.WriteString(progress, m.Stream)
		case m.Status != "" && !hasProgress(m.Progress): // progress bars would flood a log
			line := m.Status
			if m.ID != "" {
				line = m.ID + ": " + line
			}
			_, _ = io.WriteString(progress, line+"\n")
		case len(m.Aux) > 0:
			var aux struct{ ID string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
}

// parseStep reads the builder's "Step 2/3 : COPY app /app" into "2/3 : COPY app /app".
func parseStep(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, "Step ")
	if !ok {
		return "", false
	}
	num, _, ok := strings.Cut(rest, " : ")
	done, total, ok2 := strings.Cut(num, "/")
	if !ok || !ok2 || !digits(done) || !digits(total) {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

func hasProgress(detail json.RawMessage) bool {
	return len(detail) > 0 && string(detail) != "{}" && string(detail) != "null"
}

func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
