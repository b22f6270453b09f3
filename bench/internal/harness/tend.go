package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// TendMissing explains why the tend peer cannot run, or is empty when bin is an
// executable file.
func TendMissing(bin string) string {
	if bin == "" {
		return "no tend binary given (-tend)"
	}
	st, err := os.Stat(bin)
	if err != nil {
		return fmt.Sprintf("tend binary %s not found (build it with: go build -o %s ./cmd/tend)", bin, bin)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Sprintf("tend binary %s is not executable", bin)
	}
	return ""
}

// Tend is a `tend serve` daemon the benchmark started, with its own temporary data
// directory and socket, and the client commands that talk to it.
type Tend struct {
	Bin    string
	Dir    string // temporary: data/, tend.sock, serve.log
	Socket string
	cmd    *exec.Cmd
	exited chan error
}

// StartTend starts `tend serve`, with extra flags, and waits until its socket accepts
// connections.
func StartTend(ctx context.Context, bin string, flags ...string) (*Tend, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tend-bench-")
	if err != nil {
		return nil, err
	}
	t := &Tend{Bin: abs, Dir: dir, Socket: filepath.Join(dir, "tend.sock")}
	if err := t.start(ctx, flags...); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return t, nil
}

// start starts `tend serve` on t's directory and waits until its socket
// accepts connections; it stops a daemon that does not get there.
func (t *Tend) start(ctx context.Context, flags ...string) error {
	t.exited = make(chan error, 1)
	logf, err := os.OpenFile(filepath.Join(t.Dir, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	t.cmd = exec.Command(t.Bin, append([]string{"serve", "--data", filepath.Join(t.Dir, "data"), "--socket", t.Socket}, flags...)...)
	t.cmd.Stdout, t.cmd.Stderr = logf, logf
	t.cmd.Env = append(os.Environ(), "TEND_SOCKET="+t.Socket)
	// Its own process group: a ^C at the terminal must reach the benchmark, which then
	// runs `tend down` against this daemon before stopping it.
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := t.cmd.Start(); err != nil {
		return fmt.Errorf("tend serve: %w", err)
	}
	go func() { t.exited <- t.cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.DialTimeout("unix", t.Socket, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-t.exited:
			t.exited <- err
			return fmt.Errorf("tend serve exited at start: %v: %s", err, Tail(t.Log(), 600))
		case <-ctx.Done():
			t.kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.kill()
			return fmt.Errorf("tend serve: socket %s not ready after 20s: %s", t.Socket, Tail(t.Log(), 600))
		}
	}
}

// Kill ends the daemon with SIGKILL, as a crash or an OOM kill would, and
// waits for it to be gone; Restart starts it again on the same data.
func (t *Tend) Kill() { t.kill() }

func (t *Tend) kill() {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	_ = t.cmd.Process.Kill()
	t.exited <- <-t.exited
}

// Restart starts the daemon again on the same data directory and socket.
func (t *Tend) Restart(ctx context.Context, flags ...string) error { return t.start(ctx, flags...) }

// Run runs a tend client command against this daemon (through TEND_SOCKET).
func (t *Tend) Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, t.Bin, args...)
	cmd.Env = append(os.Environ(), "TEND_SOCKET="+t.Socket)
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("tend %s: %w: %s", strings.Join(args, " "), err, Tail(s, 600))
	}
	return s, nil
}

// Pid is the daemon's process ID, for CPU accounting (ProcCPU).
func (t *Tend) Pid() int { return t.cmd.Process.Pid }

// Log returns what the daemon has written so far.
func (t *Tend) Log() string {
	b, _ := os.ReadFile(filepath.Join(t.Dir, "serve.log"))
	return string(b)
}

// Stop ends the daemon (SIGTERM, then SIGKILL after 10 s) and removes its directory.
// Stopping tend does not stop the containers it runs; callers `tend down` first.
func (t *Tend) Stop() error {
	var err error
	if t.cmd != nil && t.cmd.Process != nil {
		t.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case e := <-t.exited:
			t.exited <- e
		case <-time.After(10 * time.Second):
			t.cmd.Process.Kill()
			err = errors.New("tend serve ignored SIGTERM for 10s; killed")
			t.exited <- <-t.exited
		}
	}
	os.RemoveAll(t.Dir)
	return err
}

// Up writes compose to the daemon's directory as file and runs `tend up --wait` on it as
// project, for at most limit.
func (t *Tend) Up(ctx context.Context, project, file, compose string, limit time.Duration) error {
	path := filepath.Join(t.Dir, file)
	if err := os.WriteFile(path, []byte(compose), 0o644); err != nil {
		return err
	}
	upCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	_, err := t.Run(upCtx, "up", "-f", path, "-p", project, "--wait")
	return err
}
