package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Unpause thaws a paused container.
func (d *Docker) Unpause(ctx context.Context, id string) error {
	d.forget(id)
	if _, err := d.c.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil && !cerrdefs.IsNotFound(err) &&
		!cerrdefs.IsConflict(err) { // not paused (any more): nothing to do
		return fmt.Errorf("docker: unpause %s: %w", short(id), err)
	}
	return nil
}

// The methods below are the faults `tend chaos` injects, behind tend's back:
// they go to the engine (or the host) directly, never through the supervisor.

// Kill sends SIGKILL to the container's init process, as `docker kill` does.
func (d *Docker) Kill(ctx context.Context, id string) error {
	if _, err := d.c.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		return fmt.Errorf("docker: kill %s: %w", short(id), err)
	}
	return nil
}

// StopOutside stops the container with the engine's own grace, as `docker stop` does.
func (d *Docker) StopOutside(ctx context.Context, id string) error {
	if _, err := d.c.ContainerStop(ctx, id, client.ContainerStopOptions{}); err != nil {
		return fmt.Errorf("docker: stop %s: %w", short(id), err)
	}
	return nil
}

// RemoveOutside removes the running container, as `docker rm -f` does.
func (d *Docker) RemoveOutside(ctx context.Context, id string) error {
	if _, err := d.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
		return fmt.Errorf("docker: remove %s: %w", short(id), err)
	}
	return nil
}

// Pause freezes the container through the engine, as `docker pause` does.
func (d *Docker) Pause(ctx context.Context, id string) error {
	if _, err := d.c.ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("docker: pause %s: %w", short(id), err)
	}
	return nil
}

// Throttle limits the container's CPU to cpus cores through the engine's update API.
func (d *Docker) Throttle(ctx context.Context, id string, cpus float64) error {
	res := &container.Resources{NanoCPUs: int64(cpus * 1e9)}
	if _, err := d.c.ContainerUpdate(ctx, id, client.ContainerUpdateOptions{Resources: res}); err != nil {
		return fmt.Errorf("docker: throttle %s: %w", short(id), err)
	}
	return nil
}

// Fill writes a file of size zero bytes at file (an absolute path) in the
// container's writable layer, through the engine's archive API: no shell or
// tool is needed in the image.
func (d *Docker) Fill(ctx context.Context, id, file string, size int64) error {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: path.Base(file), Mode: 0o600, Size: size, Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.CopyN(tw, zeros{}, size)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err := d.c.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: path.Dir(file), Content: pr})
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return fmt.Errorf("docker: fill %s in %s: %w", file, short(id), err)
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// StopProcesses sends SIGSTOP to every process of the container from the host: it
// stays "running" to the engine but answers nothing, and checks that run in
// it (an exec health check) find nothing answering, so its liveness fails
// without the app's cooperation. Unlike a freezer, stopped processes still
// die of SIGKILL, so the replica can be replaced. It needs root on the
// engine's host; it returns how many processes it stopped.
func (d *Docker) StopProcesses(ctx context.Context, id string) (int, error) {
	in, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("docker: inspect %s: %w", short(id), err)
	}
	st := in.Container.State
	if st == nil || st.Pid == 0 {
		return 0, fmt.Errorf("docker: sick %s: it does not run", short(id))
	}
	group, err := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/cgroup")
	if err != nil {
		return 0, fmt.Errorf("docker: sick %s: the engine's processes are not visible here (run on the engine's host, as root): %w", short(id), err)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		// Every process of a container shares its cgroups (an exec'd one too).
		if g, err := os.ReadFile("/proc/" + p.Name() + "/cgroup"); err != nil || !bytes.Equal(g, group) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return n, fmt.Errorf("docker: sick %s: stop process %d: %w", short(id), pid, err)
		}
		n++
	}
	return n, nil
}
