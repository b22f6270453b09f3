package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/supervisor"
)

// BuildMessage is one line of the answer to a build: the build's output as the
// engine writes it, then one last line with the image or the error.
type BuildMessage struct {
	Stream string                  `json:"stream,omitempty"`
	Image  *supervisor.BuildResult `json:"image,omitempty"` // the last line of a build that succeeded
	Error  string                  `json:"error,omitempty"` // the last line of a build that failed
	Kind   errs.Kind               `json:"kind,omitempty"`  // with Error
}

// build runs a build and streams its output as JSON lines. An error found
// before any output (a bad request, an engine that cannot be reached) is an
// ordinary error answer; once the stream has begun, it is its last line.
func (s *Server) build(w http.ResponseWriter, r *http.Request) {
	var req supervisor.BuildRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, errs.E(errs.Invalid, "request body is not a build request: %v", err))
		return
	}
	out := &buildStream{w: w}
	res, err := s.Supervisor.Build(r.Context(), req, out)
	switch {
	case err != nil && !out.started:
		s.fail(w, err)
	case err != nil:
		k := errs.KindOf(err)
		if k == errs.Internal {
			s.Log.Error("build failed", "service", req.Service, "err", err)
		}
		out.send(BuildMessage{Error: err.Error(), Kind: k})
	default:
		out.send(BuildMessage{Image: &res})
	}
}

// buildStream turns each write of build output into a JSON line, flushed at
// once so the user sees the build as it goes.
type buildStream struct {
	w       http.ResponseWriter
	started bool
}

func (b *buildStream) Write(p []byte) (int, error) {
	if err := b.send(BuildMessage{Stream: string(p)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (b *buildStream) send(m BuildMessage) error {
	if !b.started {
		b.w.Header().Set("Content-Type", "application/x-ndjson")
		b.w.WriteHeader(http.StatusOK)
		b.started = true
	}
	if err := json.NewEncoder(b.w).Encode(m); err != nil {
		return err // the client went away; the request's context ends the build
	}
	if f, ok := b.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// Build asks the daemon for the image of one service: built, or found when it
// exists and req.Always is not set. The build's output is copied to progress
// as it comes. A failed build is an error of the kind the daemon gave it.
func (c *Client) Build(ctx context.Context, req supervisor.BuildRequest, progress io.Writer) (supervisor.BuildResult, error) {
	resp, err := c.send(ctx, http.MethodPost, "/v1/build", nil, req)
	if err != nil {
		return supervisor.BuildResult{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m BuildMessage
		err := dec.Decode(&m)
		switch {
		case ctx.Err() != nil:
			return supervisor.BuildResult{}, ctx.Err()
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return supervisor.BuildResult{}, errs.E(errs.Unavailable, "the daemon ended the build of service %q without a result (see its log)", req.Service)
		case err != nil:
			return supervisor.BuildResult{}, fmt.Errorf("api: bad build output from daemon: %w", err)
		case m.Error != "":
			return supervisor.BuildResult{}, &errs.Error{Kind: m.Kind, Msg: m.Error}
		case m.Image != nil:
			return *m.Image, nil
		}
		if _, err := io.WriteString(progress, m.Stream); err != nil {
			return supervisor.BuildResult{}, err
		}
	}
}
