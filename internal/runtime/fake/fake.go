package fake

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// Method names a method of runtime.Runtime, for Call and FailNext.
type Method string

const (
	MethodList          Method = "List"
	MethodCreate        Method = "Create"
	MethodStart         Method = "Start"
	MethodStop          Method = "Stop"
	MethodRemove        Method = "Remove"
	MethodRelease       Method = "Release"
	MethodUnpause       Method = "Unpause"
	MethodEnsureNetwork Method = "EnsureNetwork"
	MethodRemoveNetwork Method = "RemoveNetwork"
	MethodEnsureVolume  Method = "EnsureVolume"
	MethodRemoveVolume  Method = "RemoveVolume"
	MethodEvents        Method = "Events"
	MethodRename        Method = "Rename"
	MethodExec          Method = "Exec"
	MethodLogs          Method = "Logs"
	MethodCPUTime       Method = "CPUTime"
)

// Call is one call the fake received, failed ones included. Args are the
// arguments that identify what was acted on, as text:
//
//	List(project)  Create(project, service, slot[, name unless the slot's own])  Rename(id, name)  Start(id)  Stop(id, grace)  Remove(id)
//	EnsureNetwork(project, name)  RemoveNetwork(name)  EnsureVolume(project, name)  RemoveVolume(name)
//	Events()  ImageID(ref)  Build(image, context)
type Call struct {
	Method Method
	Args   []string
}

func (c Call) String() string {
	s := string(c.Method) + "("
	for i, a := range c.Args {
		if i > 0 {
			s += ", "
		}
		s += a
	}
	return s + ")"
}

// StopExitCode is the exit code Stop leaves: that of a process ended by
// SIGTERM it does not handle.
const StopExitCode = 143

// Epoch is the fake's time until SetClock is called.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Fake is an in-memory runtime.Runtime. It is safe for concurrent use; the
// zero value is not usable, call New.
type Fake struct {
	mu          sync.Mutex
	now         func() time.Time
	seq         int
	containers  map[string]*container
	networks    map[string]bool
	volumes     map[string]bool
	images      map[string]string // image ID by reference (build.go)
	imageChecks map[string]bool   // images with a HEALTHCHECK of their own
	calls       []Call
	failures    map[Method][]error
	subs        map[*subscriber]bool
	execFn      ExecFunc
	cores       map[string]cpuUse // the CPU each container uses, by ID (SetCores)
}

type container struct {
	c         runtime.Container
	hasHealth bool // the service has a health check: a start makes it "starting"
	logs      []*io.PipeWriter
}

var _ runtime.Runtime = (*Fake)(nil)

// New returns an empty fake runtime whose clock stands at Epoch.
func New() *Fake {
	return &Fake{
		now:         func() time.Time { return Epoch },
		containers:  map[string]*container{},
		networks:    map[string]bool{},
		volumes:     map[string]bool{},
		images:      map[string]string{},
		imageChecks: map[string]bool{},
		failures:    map[Method][]error{},
		subs:        map[*subscriber]bool{},
	}
}

// SetClock sets where the fake reads the time for Created, StartedAt and
// FinishedAt; typically a clock.Fake's Now.
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// FailNext makes the next call of method return err. Calls queue: two
// FailNext of one method fail its next two calls.
func (f *Fake) FailNext(method Method, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[method] = append(f.failures[method], err)
}

// Calls returns the calls received so far, oldest first.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ResetCalls forgets the calls received so far.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// begin records a call and returns the failure injected for it, if any.
// The caller holds f.mu.
func (f *Fake) begin(m Method, args ...string) error {
	f.calls = append(f.calls, Call{Method: m, Args: args})
	q := f.failures[m]
	if len(q) == 0 {
		return nil
	}
	f.failures[m] = q[1:]
	return q[0]
}

func (f *Fake) List(_ context.Context, project string) ([]runtime.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodList, project); err != nil {
		return nil, err
	}
	var out []runtime.Container
	for _, id := range slices.Sorted(maps.Keys(f.containers)) {
		c := f.containers[id].c
		if project == "" || c.Project == project {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *Fake) Create(_ context.Context, p *spec.Project, svc *spec.Service, r runtime.Replica) (string, error) {
	slot, name := r.Slot, r.Name
	f.mu.Lock()
	defer f.mu.Unlock()
	args := []string{p.Name, svc.Name, strconv.Itoa(slot)}
	if name != runtime.ReplicaName(p.Name, svc, slot) {
		args = append(args, name)
	}
	if err := f.begin(MethodCreate, args...); err != nil {
		return "", err
	}
	for _, e := range f.containers {
		if e.c.Name == name {
			return "", errs.E(errs.Conflict, "fake: create %s: name already in use by %s", name, e.c.ID)
		}
	}
	for _, a := range svc.Networks {
		if n := p.NetworkName(a.Network); !f.networks[n] {
			return "", errs.E(errs.NotFound, "fake: create %s: network %s not found", name, n)
		}
	}
	f.seq++
	c := runtime.Container{
		ID:      fmt.Sprintf("fake%08d", f.seq),
		Name:    name,
		Project: p.Name,
		Service: svc.Name,
		Slot:    slot,
		Hash:    svc.Hash(),
		State:   runtime.Created,
		Created: f.now(),
	}
	f.containers[c.ID] = &container{c: c, hasHealth: svc.Healthcheck != nil && !svc.Healthcheck.Disable}
	f.emit(c, "create")
	return c.ID, nil
}

func (f *Fake) Start(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodStart, id); err != nil {
		return err
	}
	e, ok := f.containers[id]
	if !ok {
		return errs.E(errs.NotFound, "fake: start %s: no such container", id)
	}
	if e.c.State == runtime.Running {
		return nil // the engine answers "not modified"
	}
	// Like the engine: the exit code resets, FinishedAt keeps the last exit.
	e.c.State, e.c.ExitCode, e.c.StartedAt = runtime.Running, 0, f.now()
	e.c.OOMKilled, e.c.Held = false, false
	e.c.IP = "10.0.0." + strings.TrimLeft(strings.TrimPrefix(id, "fake"), "0")
	e.c.Health = runtime.HealthNone
	if e.hasHealth {
		e.c.Health = runtime.HealthStarting
	}
	f.emit(e.c, "start")
	return nil
}

func (f *Fake) Stop(_ context.Context, id string, grace time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodStop, id, grace.String()); err != nil {
		return err
	}
	e, ok := f.containers[id]
	if !ok || e.c.State != runtime.Running {
		return nil
	}
	f.exit(e, StopExitCode)
	f.emit(e.c, "stop")
	return nil
}

// Release ends a held exit (see ExitHeld) as exited; for any other container
// it only records the call.
func (f *Fake) Release(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodRelease, id); err != nil {
		return err
	}
	if e, ok := f.containers[id]; ok {
		e.c.Held = false
	}
	return nil
}

// Unpause thaws a paused container (see Pause); for any other container it
// only records the call.
func (f *Fake) Unpause(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodUnpause, id); err != nil {
		return err
	}
	if e, ok := f.containers[id]; ok && e.c.State == runtime.Paused {
		e.c.State = runtime.Running
		f.emit(e.c, "unpause")
	}
	return nil
}

func (f *Fake) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodRemove, id); err != nil {
		return err
	}
	if e, ok := f.containers[id]; ok {
		f.destroy(e)
	}
	return nil
}

// Rename renames a container; a name in use is a conflict, as in the engine.
func (f *Fake) Rename(_ context.Context, id, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodRename, id, name); err != nil {
		return err
	}
	e, ok := f.containers[id]
	if !ok {
		return errs.E(errs.NotFound, "fake: rename %s: no such container", id)
	}
	for _, o := range f.containers {
		if o.c.Name == name && o != e {
			return errs.E(errs.Conflict, "fake: rename %s: name %s already in use by %s", id, name, o.c.ID)
		}
	}
	e.c.Name = name
	f.emit(e.c, "rename")
	return nil
}

// exit ends a container's process. The caller holds f.mu.
func (f *Fake) exit(e *container, code int) {
	e.c.State, e.c.ExitCode, e.c.FinishedAt, e.c.Health, e.c.IP = runtime.Exited, code, f.now(), runtime.HealthNone, ""
	endLogs(e)
	f.emit(e.c, "die")
}

// destroy removes a container, killing it first if it runs. The caller holds f.mu.
func (f *Fake) destroy(e *container) {
	if e.c.State == runtime.Running {
		f.exit(e, 137) // SIGKILL
	}
	delete(f.containers, e.c.ID)
	f.emit(e.c, "destroy")
}

func (f *Fake) EnsureNetwork(_ context.Context, project string, n spec.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodEnsureNetwork, project, n.Name); err != nil {
		return err
	}
	if n.External && !f.networks[n.Name] {
		return errs.E(errs.NotFound, "fake: network %s is declared external but does not exist", n.Name)
	}
	f.networks[n.Name] = true
	return nil
}

// NetworkGateway answers 10.99.0.1 for every network the fake has.
func (f *Fake) NetworkGateway(_ context.Context, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.networks[name] {
		return "", errs.E(errs.NotFound, "fake: network %s not found", name)
	}
	return "10.99.0.1", nil
}

func (f *Fake) RemoveNetwork(_ context.Context, n spec.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodRemoveNetwork, n.Name); err != nil {
		return err
	}
	if !n.External {
		delete(f.networks, n.Name)
	}
	return nil
}

func (f *Fake) EnsureVolume(_ context.Context, project string, v spec.Volume) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodEnsureVolume, project, v.Name); err != nil {
		return err
	}
	if v.External && !f.volumes[v.Name] {
		return errs.E(errs.NotFound, "fake: volume %s is declared external but does not exist", v.Name)
	}
	f.volumes[v.Name] = true
	return nil
}

func (f *Fake) RemoveVolume(_ context.Context, v spec.Volume) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodRemoveVolume, v.Name); err != nil {
		return err
	}
	if !v.External {
		delete(f.volumes, v.Name)
	}
	return nil
}
