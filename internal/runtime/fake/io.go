package fake

import (
	"context"
	"io"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
)

// ExecFunc answers Exec calls; see SetExec.
type ExecFunc func(id string, cmd []string) (runtime.ExecResult, error)

// SetExec sets how Exec answers; without it, every command exits 0.
func (f *Fake) SetExec(fn ExecFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execFn = fn
}

// Exec runs nothing: it answers with the ExecFunc, for running containers only.
func (f *Fake) Exec(_ context.Context, id string, cmd []string) (runtime.ExecResult, error) {
	f.mu.Lock()
	err := f.begin(MethodExec, id)
	e, ok := f.containers[id]
	running := ok && e.c.State == runtime.Running
	fn := f.execFn
	f.mu.Unlock()
	switch {
	case err != nil:
		return runtime.ExecResult{}, err
	case !running:
		return runtime.ExecResult{}, errs.E(errs.Conflict, "fake: exec in %s: container is not running", id)
	case fn == nil:
		return runtime.ExecResult{}, nil
	}
	return fn(id, cmd)
}

// Logs follows what WriteLog writes for the container from now on (since is
// ignored); the stream ends when the container stops or is removed.
func (f *Fake) Logs(_ context.Context, id string, _ time.Time) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodLogs, id); err != nil {
		return nil, err
	}
	e, ok := f.containers[id]
	if !ok {
		return nil, errs.E(errs.NotFound, "fake: logs of %s: no such container", id)
	}
	r, w := io.Pipe()
	if e.c.State != runtime.Running {
		w.Close()
		return r, nil
	}
	e.logs = append(e.logs, w)
	return r, nil
}

// WriteLog writes text to the followers of a container's output, as if its
// process printed it. It blocks until they read it.
func (f *Fake) WriteLog(id, text string) {
	f.mu.Lock()
	var ws []*io.PipeWriter
	if e, ok := f.containers[id]; ok {
		ws = e.logs
	}
	f.mu.Unlock()
	for _, w := range ws {
		w.Write([]byte(text)) // a closed follower is no error of the process's
	}
}

// endLogs ends the container's log streams. The caller holds f.mu.
func endLogs(e *container) {
	for _, w := range e.logs {
		w.Close()
	}
	e.logs = nil
}
