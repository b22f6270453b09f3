package fake

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
)

// The methods in this file play the engine's part for a test. They are not
// recorded as calls. Those that name a container return an errs.NotFound error
// when it does not exist, and an errs.Conflict error when its state does not
// allow the change.

// Add puts c in the fake as it is, as if it had been there before tend looked:
// for adoption, duplicates or containers of an older spec. An empty ID gets a
// fresh one; Name defaults to runtime.ContainerName. It has no health check:
// a Start leaves its health empty. Add emits no event and returns the ID.
func (f *Fake) Add(c runtime.Container) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.ID == "" {
		f.seq++
		c.ID = fmt.Sprintf("fake%08d", f.seq)
	}
	if c.Name == "" {
		c.Name = runtime.ContainerName(c.Project, c.Service, c.Slot)
	}
	f.containers[c.ID] = &container{c: c}
	return c.ID
}

// Container returns the container with id as the engine would report it.
func (f *Fake) Container(id string) (runtime.Container, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.containers[id]
	if !ok {
		return runtime.Container{}, false
	}
	return e.c, true
}

// Exit makes a running container's process exit with code, at the clock's
// time, and emits "die".
func (f *Fake) Exit(id string, code int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.running(id, "exit")
	if err != nil {
		return err
	}
	f.exit(e, code)
	return nil
}

// Pause freezes a running container, as `docker pause` does, and emits "pause".
func (f *Fake) Pause(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.running(id, "pause")
	if err != nil {
		return err
	}
	e.c.State = runtime.Paused
	f.emit(e.c, "pause")
	return nil
}

// OOMKill ends a running container as the kernel's OOM killer does: it emits
// "oom", then "die" with code 137, and the container says OOMKilled.
func (f *Fake) OOMKill(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.running(id, "OOM-kill")
	if err != nil {
		return err
	}
	f.emit(e.c, "oom")
	e.c.OOMKilled = true
	f.exit(e, 137)
	return nil
}

// ExitHeld makes a running container's command exit with code inside a
// container that lives on, as under tend's shim: it shows as exited and
// Held until it is started again or released.
func (f *Fake) ExitHeld(id string, code int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.running(id, "exit")
	if err != nil {
		return err
	}
	e.c.Held = true
	f.exit(e, code)
	return nil
}

// Delete removes a container as someone outside tend would (docker rm -f),
// emitting "die" if it ran, then "destroy".
func (f *Fake) Delete(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.containers[id]
	if !ok {
		return errs.E(errs.NotFound, "fake: delete %s: no such container", id)
	}
	f.destroy(e)
	return nil
}

// SetHealth sets a running container's health verdict and emits
// "health_status: <h>", as the engine does when the verdict changes.
func (f *Fake) SetHealth(id string, h runtime.Health) error { return f.SetHealthResult(id, h, "") }

// SetHealthResult is SetHealth with the output of the check that decided it.
func (f *Fake) SetHealthResult(id string, h runtime.Health, output string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.running(id, "set health of")
	if err != nil {
		return err
	}
	e.c.Health, e.c.HealthOutput = h, output
	f.emit(e.c, "health_status: "+string(h))
	return nil
}

func (f *Fake) running(id, doing string) (*container, error) {
	e, ok := f.containers[id]
	switch {
	case !ok:
		return nil, errs.E(errs.NotFound, "fake: %s %s: no such container", doing, id)
	case e.c.State != runtime.Running:
		return nil, errs.E(errs.Conflict, "fake: %s %s: container is %s", doing, id, e.c.State)
	}
	return e, nil
}

// AddNetwork makes a network exist, as an external one made outside tend.
func (f *Fake) AddNetwork(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks[name] = true
}

// AddVolume makes a volume exist, as an external one made outside tend.
func (f *Fake) AddVolume(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.volumes[name] = true
}

// Networks returns the names of the networks that exist, sorted.
func (f *Fake) Networks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.networks))
}

// Volumes returns the names of the volumes that exist, sorted.
func (f *Fake) Volumes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.volumes))
}
