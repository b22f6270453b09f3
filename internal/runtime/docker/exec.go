package docker

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
)

// maxExecOutput bounds what tend keeps of an exec's output: a probe's verdict
// needs a line, not a log.
const maxExecOutput = 4096

// Exec runs cmd in a running container and waits for it to end.
func (d *Docker) Exec(ctx context.Context, id string, cmd []string) (runtime.ExecResult, error) {
	what := fmt.Sprintf("docker: exec %s in %s", strings.Join(cmd, " "), short(id))
	created, err := d.c.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		if gone(err) {
			return runtime.ExecResult{}, errs.Wrap(errs.NotFound, fmt.Errorf("%s: %w", what, err))
		}
		return runtime.ExecResult{}, fmt.Errorf("%s: %w", what, err)
	}
	att, err := d.c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("%s: %w", what, err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, func() { att.Close() }) // a hung command must not hang the caller
	defer stop()
	var out limited
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil && ctx.Err() == nil {
		return runtime.ExecResult{}, fmt.Errorf("%s: read output: %w", what, err)
	}
	if ctx.Err() != nil {
		return runtime.ExecResult{}, fmt.Errorf("%s: %w", what, ctx.Err())
	}
	res, err := d.c.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("%s: %w", what, err)
	}
	return runtime.ExecResult{ExitCode: res.ExitCode, Output: out.b.String()}, nil
}

// limited keeps the first maxExecOutput bytes written to it and drops the rest.
type limited struct{ b strings.Builder }

func (l *limited) Write(p []byte) (int, error) {
	if room := maxExecOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// Logs follows a container's stdout and stderr from since on, demultiplexed.
func (d *Docker) Logs(ctx context.Context, id string, o runtime.LogOptions) (io.ReadCloser, error) {
	in, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if gone(err) {
			return nil, errs.Wrap(errs.NotFound, fmt.Errorf("docker: logs of %s: %w", short(id), err))
		}
		return nil, fmt.Errorf("docker: logs of %s: %w", short(id), err)
	}
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: o.Follow}
	if !o.Since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", o.Since.Unix(), o.Since.Nanosecond())
	}
	if o.Tail > 0 {
		opts.Tail = strconv.Itoa(o.Tail)
	}
	rc, err := d.c.ContainerLogs(ctx, id, opts)
	if err != nil {
		return nil, fmt.Errorf("docker: logs of %s: %w", short(id), err)
	}
	if in.Container.Config != nil && in.Container.Config.Tty {
		return rc, nil // a terminal's output is one plain stream
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		pw.CloseWithError(err)
	}()
	return &logStream{PipeReader: pr, src: rc}, nil
}

// logStream closes the engine's stream with the pipe, which ends the copy.
type logStream struct {
	*io.PipeReader
	src io.Closer
}

func (l *logStream) Close() error {
	l.src.Close()
	return l.PipeReader.Close()
}
