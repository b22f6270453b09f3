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

// Logs follows what WriteLog writes for the container from now on (Since
// and Tail are ignored: the fake keeps no history, so without Follow there
// is nothing); the stream ends when the container stops or is removed.
func (f *Fake) Logs(_ context.Context, id string, o runtime.LogOptions) (io.ReadCloser, error) {
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
	if e.c.State != runtime.Running || !o.Follow {
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

// SetCores makes the container use this many cores from now on, as CPUTime
// reports it (on the fake's clock).
func (f *Fake) SetCores(id string, cores float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cores == nil {
		f.cores = map[string]cpuUse{}
	}
	now := f.now()
	f.cores[id] = cpuUse{cores: cores, base: f.cores[id].used(now), since: now}
}

// cpuUse is one container's CPU time on the fake's clock.
type cpuUse struct {
	cores float64
	base  time.Duration // used until since
	since time.Time
}

func (u cpuUse) used(now time.Time) time.Duration {
	if u.since.IsZero() {
		return 0
	}
	return u.base + time.Duration(u.cores*float64(now.Sub(u.since)))
}

// CPUTime answers with the CPU time SetCores made the container use (none
// by default), for running containers only.
func (f *Fake) CPUTime(_ context.Context, id string) (time.Duration, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodCPUTime, id); err != nil {
		return 0, time.Time{}, err
	}
	e, ok := f.containers[id]
	if !ok || e.c.State != runtime.Running {
		return 0, time.Time{}, errs.E(errs.NotFound, "fake: cpu time of %s: container is not running", id)
	}
	now := f.now()
	return f.cores[id].used(now), now, nil
}
