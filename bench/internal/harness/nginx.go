package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// NginxConfig is what the peer proxy is set up with. The upstream block and location are
// those of a user who deploys nginx in front of replicas that die: idle connections kept
// to the replicas (keepalive 64, HTTP/1.1 with the Connection header cleared), a replica
// that fails once taken out for a second (max_fails=1 fail_timeout=1s), and a request
// passed on to the next replica on a connection error, a timeout, a 502 or a 503, with a
// 250 ms connect timeout. nginx's default (max_fails=1 fail_timeout=10s, next upstream on
// error and timeout only, connect timeout 60 s) marks every replica down within a few
// kills and then answers "no live upstreams" for seconds: a weaker peer than anyone
// would deploy. As nginx does by default, a POST that reached a replica is not passed on
// (proxy_next_upstream without non_idempotent); one that could not connect is.
type NginxConfig struct {
	Bin       string   // nginx binary
	Listen    string   // host:port for HTTP/1.x
	ListenH2C string   // host:port for HTTP/2 with prior knowledge (h2c); "" for none
	Workers   string   // worker_processes
	Upstreams []string // the replicas, host:port
}

const nginxConf = `# written by tend's benchmarks (bench/internal/harness)
worker_processes %s;
user www-data;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    upstream web {
%[3]s        keepalive 64;
    }
    server {
%[4]s        location / {
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 250ms;
        }
    }
}
`

// render returns the whole configuration for dir.
func (c NginxConfig) render(dir string) string {
	var ups, listen strings.Builder
	for _, u := range c.Upstreams {
		fmt.Fprintf(&ups, "        server %s max_fails=1 fail_timeout=1s;\n", u)
	}
	fmt.Fprintf(&listen, "        listen %s;\n", c.Listen)
	if c.ListenH2C != "" {
		// A plain-text listener marked http2 speaks HTTP/2 with prior knowledge.
		fmt.Fprintf(&listen, "        listen %s http2;\n", c.ListenH2C)
	}
	return fmt.Sprintf(nginxConf, c.Workers, dir, ups.String(), listen.String())
}

// Nginx is the peer proxy: a master process the benchmark started in the foreground
// (daemon off), in its own process group, with its config, logs and pid file in a
// temporary directory.
type Nginx struct {
	cfg    NginxConfig
	dir    string
	cmd    *exec.Cmd
	exited chan error
}

// StartNginx writes the config, checks it (nginx -t), starts nginx and waits until it
// accepts connections on its listeners.
func StartNginx(ctx context.Context, cfg NginxConfig) (*Nginx, error) {
	if _, err := exec.LookPath(cfg.Bin); err != nil {
		return nil, fmt.Errorf("%v (bench/traffic/tools.sh installs nginx-light)", err)
	}
	dir, err := os.MkdirTemp("", "tend-bench-nginx-")
	if err != nil {
		return nil, err
	}
	n := &Nginx{cfg: cfg, dir: dir, exited: make(chan error, 1)}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := n.writeConf(ctx, cfg); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	n.cmd = exec.Command(cfg.Bin, n.args()...)
	n.cmd.Stdout, n.cmd.Stderr = os.Stderr, os.Stderr
	// Its own process group, so ^C reaches only the benchmark, which then stops nginx;
	// and the master dies with the benchmark should the benchmark be killed.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx: %w", err)
	}
	go func() { n.exited <- n.cmd.Wait() }()
	for _, a := range []string{cfg.Listen, cfg.ListenH2C} {
		if a == "" {
			continue
		}
		if err := n.waitListening(ctx, a); err != nil {
			n.Stop()
			return nil, err
		}
	}
	return n, nil
}

func (n *Nginx) args() []string {
	return []string{"-p", n.dir, "-c", filepath.Join(n.dir, "nginx.conf"), "-e", filepath.Join(n.dir, "error.log")}
}

// writeConf writes cfg as the config file and has nginx check it.
func (n *Nginx) writeConf(ctx context.Context, cfg NginxConfig) error {
	if err := os.WriteFile(filepath.Join(n.dir, "nginx.conf"), []byte(cfg.render(n.dir)), 0o644); err != nil {
		return err
	}
	_, err := Run(ctx, cfg.Bin, append(n.args(), "-t", "-q")...)
	return err
}

// Upstreams are the replica addresses nginx balances over now.
func (n *Nginx) Upstreams() []string { return slices.Clone(n.cfg.Upstreams) }

// SetUpstreams points nginx at other replica addresses, as a user's config generator
// would when a replica is recreated with a new address: it rewrites the config and
// reloads (SIGHUP), then waits until the old workers are gone, so no request is served
// by the old config afterwards. Call it while no client is connected (the old workers
// finish their connections first). The same set in another order changes nothing.
func (n *Nginx) SetUpstreams(ctx context.Context, addrs []string) error {
	if SameSet(addrs, n.cfg.Upstreams) {
		return nil
	}
	cfg := n.cfg
	cfg.Upstreams = slices.Clone(addrs)
	if err := n.writeConf(ctx, cfg); err != nil {
		return err
	}
	old := ChildPids(n.cmd.Process.Pid)
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("nginx: reload: %w", err)
	}
	n.cfg = cfg
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		kids := ChildPids(n.cmd.Process.Pid)
		if !slices.ContainsFunc(kids, func(p int) bool { return slices.Contains(old, p) }) && len(kids) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("nginx: reload: old workers still running after 10s")
}

// SameSet reports whether a and b hold the same strings, in any order.
func SameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func (n *Nginx) waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-n.exited:
			n.exited <- err
			return fmt.Errorf("nginx exited at start: %v: %s", err, Tail(n.ErrorLog(0), 600))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("nginx not listening on %s after 10s: %s", addr, Tail(n.ErrorLog(0), 600))
}

// Pids returns the master and its workers.
func (n *Nginx) Pids() []int {
	p := n.cmd.Process.Pid
	return append([]int{p}, ChildPids(p)...)
}

// Stop asks nginx to quit gracefully (SIGQUIT), then ends its process group (SIGKILL)
// after 10 s, and removes its directory.
func (n *Nginx) Stop() error {
	var err error
	pid := n.cmd.Process.Pid
	syscall.Kill(pid, syscall.SIGQUIT)
	select {
	case e := <-n.exited:
		n.exited <- e
	case <-time.After(10 * time.Second):
		syscall.Kill(-pid, syscall.SIGKILL)
		err = errors.New("nginx ignored SIGQUIT for 10s; killed")
		n.exited <- <-n.exited
	}
	// Workers outlive a master that died abruptly; the group is nginx's alone (ESRCH
	// when nothing is left, as after a graceful quit).
	syscall.Kill(-pid, syscall.SIGKILL)
	os.RemoveAll(n.dir)
	return err
}

// ErrorLog returns its error log from byte offset from on.
func (n *Nginx) ErrorLog(from int64) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	if from > int64(len(b)) {
		return ""
	}
	return string(b[from:])
}

// ErrorLogSize is where the error log ends now, for a later ErrorLog.
func (n *Nginx) ErrorLogSize() int64 {
	st, err := os.Stat(filepath.Join(n.dir, "error.log"))
	if err != nil {
		return 0
	}
	return st.Size()
}

var nginxLogLine = regexp.MustCompile(`\[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*?)(?: while [^,]*)?(?:, client: .*)?$`)

// NginxErrors counts the error log's lines by message (the level and text up to
// "while ..." or ", client:"), e.g. "error: connect() failed (111: Connection refused)".
func NginxErrors(log string) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		if m := nginxLogLine.FindStringSubmatch(line); m != nil {
			msg := m[2]
			if i := strings.Index(msg, " while "); i > 0 {
				msg = msg[:i]
			}
			out[m[1]+": "+msg]++
		}
	}
	return out
}
