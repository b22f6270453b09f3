package docker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/shim"
	"github.com/tend-sh/tend/internal/spec"
)

// The adapter's side of internal/shim: it wraps each replica's command in
// `tend shim`, serves the socket the shims report exits on (Run), shows a
// held exit to the planner as an exited container (List), and answers it:
// Start says "restart", Release says "exit". The engine is not involved, so
// a crash is restarted in milliseconds.

// LabelShim carries the token a container's shim identifies itself with.
const LabelShim = "io.tend.shim"

// ShimConfig enables the shim; the zero value leaves replicas unwrapped.
type ShimConfig struct {
	// Dir is a host directory for the control socket and a copy of tend's
	// binary; both are mounted into every replica.
	Dir string
	// Binary is the tend executable to copy; it must be statically linked,
	// since replicas' images may have no C library (FROM scratch).
	Binary string
}

// held is an exit a shim is waiting on a verdict for.
type held struct {
	conn net.Conn
	exit shim.Exit
}

// prepareShim copies tend's binary into the shim directory (a stable path:
// replicas keep mounting it across upgrades and clean-ups of the original)
// and returns that copy's path.
func prepareShim(cfg ShimConfig) (string, error) {
	if err := staticBinary(cfg.Binary); err != nil {
		return "", err
	}
	data, err := os.ReadFile(cfg.Binary)
	if err != nil {
		return "", fmt.Errorf("shim: read %s: %w", cfg.Binary, err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return "", fmt.Errorf("shim: %w", err)
	}
	// Replicas may run as any user: they must be able to enter the directory.
	if err := os.Chmod(cfg.Dir, 0o755); err != nil {
		return "", fmt.Errorf("shim: %w", err)
	}
	sum := sha256.Sum256(data)
	path := filepath.Join(cfg.Dir, "tend-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return "", fmt.Errorf("shim: %w", err)
	}
	return path, os.Rename(tmp, path)
}

// staticBinary refuses a dynamically linked executable: it could not run in
// an image without a C library.
func staticBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("shim: %s is not an executable tend can put in replicas: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("shim: %s is dynamically linked; build tend with CGO_ENABLED=0 (as `make build` does)", path)
		}
	}
	return nil
}

// wrap puts the shim in front of the replica's command: the image's
// entrypoint and command, as compose's entrypoint and command override them.
func (d *Docker) wrap(ctx context.Context, opts *client.ContainerCreateOptions, svc *spec.Service) error {
	argv, err := d.command(ctx, svc)
	if err != nil {
		return err
	}
	token, err := newToken()
	if err != nil {
		return err
	}
	cfg, host := opts.Config, opts.HostConfig
	cfg.Entrypoint = append([]string{shim.Binary, "shim", "--"}, argv...)
	cfg.Cmd = nil
	cfg.Env = append(cfg.Env, shim.EnvToken+"="+token)
	cfg.Labels[LabelShim] = token
	host.Mounts = append(host.Mounts,
		mount.Mount{Type: mount.TypeBind, Source: d.shimBinary, Target: shim.Binary, ReadOnly: true},
		mount.Mount{Type: mount.TypeBind, Source: d.shim.Dir, Target: shim.SocketDir})
	return nil
}

func (d *Docker) command(ctx context.Context, svc *spec.Service) ([]string, error) {
	if svc.Entrypoint != nil {
		// An entrypoint override drops the image's command.
		argv := append(append([]string{}, svc.Entrypoint...), svc.Command...)
		if len(argv) == 0 {
			return nil, fmt.Errorf("the service's entrypoint and command are empty")
		}
		return argv, nil
	}
	img, err := d.c.ImageInspect(ctx, svc.Image)
	if err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", svc.Image, err)
	}
	var argv []string
	if img.Config != nil {
		argv = append(argv, img.Config.Entrypoint...)
		if svc.Command == nil {
			argv = append(argv, img.Config.Cmd...)
		}
	}
	argv = append(argv, svc.Command...)
	if len(argv) == 0 {
		return nil, fmt.Errorf("image %s has no command and the service sets none", svc.Image)
	}
	return argv, nil
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Run serves the shims' control socket until ctx ends. Without a ShimConfig
// it only waits.
func (d *Docker) Run(ctx context.Context) error {
	if d.shim.Dir == "" {
		<-ctx.Done()
		return nil
	}
	path := filepath.Join(d.shim.Dir, filepath.Base(shim.Socket))
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("shim: listen on %s: %w", path, err)
	}
	// Replicas may run as any user; the token, not the file mode, says who asks.
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return fmt.Errorf("shim: %w", err)
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("shim: accept: %w", err)
		}
		go d.serveShim(ctx, conn)
	}
}

// serveShim takes one exit report and holds it until a verdict, or until the
// shim goes away (its container was stopped or killed).
func (d *Docker) serveShim(ctx context.Context, conn net.Conn) {
	var e shim.Exit
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := json.NewDecoder(conn).Decode(&e); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	id, ok := d.byToken(ctx, e.Token)
	if !ok {
		conn.Close() // not one of ours: the shim exits with its code
		return
	}
	d.hold(id, &held{conn: conn, exit: e})
	d.notify(ctx, runtime.Event{Container: id, Action: "die"})
	// The shim sends nothing more: a read returns when it hangs up.
	_, _ = io.Copy(io.Discard, conn)
	if d.unhold(id, conn) {
		d.notify(ctx, runtime.Event{Container: id, Action: "die"})
	}
}

// hold records a held exit and shows it to List as an exited container.
func (d *Docker) hold(id string, h *held) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.holds[id]; old != nil {
		old.conn.Close()
	}
	d.holds[id] = h
	d.runStarted[id] = h.exit.Started
	e, ok := d.inspected[id]
	if !ok {
		return // List inspects it, and the hold applies then
	}
	d.inspected[id] = heldEntry(e, h)
}

func heldEntry(e cached, h *held) cached {
	e.c.State, e.c.ExitCode, e.c.Health = runtime.Exited, h.exit.Code, runtime.HealthNone
	e.c.StartedAt, e.c.FinishedAt = h.exit.Started, h.exit.Finished
	// The command's own exit, in a container that lives on: the engine's
	// word on OOM kills is about the container, and comes too late for it.
	e.c.Held, e.c.OOMKilled = true, false
	e.died = true
	return e
}

// unhold forgets a hold whose shim hung up; it reports whether there was one.
func (d *Docker) unhold(id string, conn net.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.holds[id]
	if h == nil || h.conn != conn {
		return false
	}
	delete(d.holds, id)
	delete(d.inspected, id)
	return true
}

// answer gives a held exit its verdict; it reports whether there was one.
func (d *Docker) answer(id string, restart bool) bool {
	d.mu.Lock()
	h := d.holds[id]
	delete(d.holds, id)
	if h != nil {
		if restart {
			d.runStarted[id] = time.Now()
		}
		delete(d.inspected, id) // the next List asks the engine again (it is quick now)
	}
	d.mu.Unlock()
	if h == nil {
		return false
	}
	err := json.NewEncoder(h.conn).Encode(shim.Verdict{Restart: restart})
	h.conn.Close()
	return err == nil
}

// Release lets a container whose exit tend holds end as exited; for any other
// container it does nothing.
func (d *Docker) Release(ctx context.Context, id string) error {
	d.answer(id, false)
	return nil
}

func (d *Docker) byToken(ctx context.Context, token string) (string, bool) {
	if token == "" {
		return "", false
	}
	d.mu.Lock()
	for id, e := range d.inspected {
		if e.token == token {
			d.mu.Unlock()
			return id, true
		}
	}
	d.mu.Unlock()
	res, err := d.c.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", LabelShim+"="+token)})
	if err != nil || len(res.Items) != 1 {
		return "", false
	}
	return res.Items[0].ID, true
}

// notify wakes the supervisor through the event stream.
func (d *Docker) notify(ctx context.Context, e runtime.Event) {
	select {
	case d.shimEvents <- e:
	case <-ctx.Done():
	}
}
