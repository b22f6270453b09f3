package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config is one shim's setup; zero values are defaults.
type Config struct {
	Argv   []string // the replica's own command, entrypoint included
	Socket string   // tend's control socket (default Socket)
	Token  string   // this container's token (default: $TEND_SHIM_TOKEN)
}

// Run runs cfg.Argv until it exits for good and returns the code the
// container should exit with.
func Run(cfg Config) int {
	if cfg.Socket == "" {
		cfg.Socket = Socket
	}
	if cfg.Token == "" {
		cfg.Token = os.Getenv(EnvToken)
	}
	if len(cfg.Argv) == 0 {
		fmt.Fprintln(os.Stderr, "tend shim: no command to run")
		return 127
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	defer signal.Stop(sigs)
	reaping.Do(func() { go reap(reaped) })
	r := &runner{cfg: cfg, env: childEnv(), sigs: sigs, exits: reaped}
	return r.loop()
}

// One reaper per process: two would race for each child's exit status.
var (
	reaping sync.Once
	reaped  = make(chan childExit, 16)
)

type runner struct {
	cfg      Config
	env      []string
	sigs     chan os.Signal
	exits    <-chan childExit
	child    *os.Process
	stopping bool
}

// childExit is a reaped process and its status.
type childExit struct {
	pid  int
	code int
	at   time.Time
}

func (r *runner) loop() int {
	for {
		started := time.Now()
		if err := r.start(); err != nil {
			fmt.Fprintf(os.Stderr, "tend shim: %v\n", err)
			return 127
		}
		code, finished := r.wait()
		if r.stopping {
			return code
		}
		v, err := r.ask(Exit{Token: r.cfg.Token, Code: code, Started: started, Finished: finished})
		if err != nil || !v.Restart {
			return code
		}
	}
}

func (r *runner) start() error {
	p, err := os.StartProcess(lookPath(r.cfg.Argv[0], r.env), r.cfg.Argv, &os.ProcAttr{
		Env:   r.env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", r.cfg.Argv[0], err)
	}
	r.child = p
	return nil
}

// wait forwards signals to the command until it exits, and returns its exit code.
func (r *runner) wait() (int, time.Time) {
	for {
		select {
		case s := <-r.sigs:
			r.forward(s)
		case e := <-r.exits:
			if e.pid == r.child.Pid {
				return e.code, e.at
			}
		}
	}
}

func (r *runner) forward(s os.Signal) {
	sig, ok := s.(syscall.Signal)
	if !ok || sig == syscall.SIGCHLD || sig == syscall.SIGURG {
		return // the shim's own business (SIGURG is the Go runtime's)
	}
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL:
		r.stopping = true // the container is being stopped: no restart after this exit
	}
	_ = r.child.Signal(sig)
}

// ask reports an exit to tend and waits for its verdict. While it waits, a
// stop signal ends the wait: the container is going away.
func (r *runner) ask(e Exit) (Verdict, error) {
	conn, err := net.DialTimeout("unix", r.cfg.Socket, time.Second)
	if err != nil {
		return Verdict{}, err
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(e); err != nil {
		return Verdict{}, err
	}
	answer := make(chan Verdict, 1)
	failed := make(chan error, 1)
	go func() {
		var v Verdict
		if err := json.NewDecoder(conn).Decode(&v); err != nil {
			failed <- err
			return
		}
		answer <- v
	}()
	for {
		select {
		case v := <-answer:
			return v, nil
		case err := <-failed:
			return Verdict{}, err
		case s := <-r.sigs:
			if sig, ok := s.(syscall.Signal); ok && (sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGQUIT) {
				return Verdict{}, context.Canceled
			}
		case <-r.exits: // an orphan reaped meanwhile
		}
	}
}

// reap collects every child that exits: the command and, as PID 1, any
// orphan the command left behind.
func reap(exits chan<- childExit) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // no children right now
			continue
		}
		code := ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		exits <- childExit{pid: pid, code: code, at: time.Now()}
	}
}

// childEnv is the shim's environment without tend's own variables.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEND_SHIM_") {
			env = append(env, kv)
		}
	}
	return env
}

// lookPath finds name on the PATH of env, as a shell would.
func lookPath(name string, env []string) string {
	if strings.Contains(name, "/") {
		return name
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}
