package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// nginxConf is the peer's whole configuration: the upstream keeps idle connections to
// the replicas (keepalive 64, HTTP/1.1 with the Connection header cleared), as a tuned
// deployment would; everything else is nginx's default (passive health: max_fails 1,
// fail_timeout 10s; proxy_next_upstream error timeout; proxy_connect_timeout 60s).
const nginxConf = `# written by bench/traffic
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
        listen %[4]s;
        location / {
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`

// nginx is the peer proxy: a master process the benchmark started in the foreground
// (daemon off), in its own process group, with its config, logs and pid file in a
// temporary directory.
type nginx struct {
	dir    string
	cmd    *exec.Cmd
	exited chan error
}

// startNginx writes the config for the replicas' addresses, checks it (nginx -t), starts
// nginx and waits until it accepts connections on addr.
func startNginx(ctx context.Context, bin, addr, workers string, reps []replica) (*nginx, error) {
	if _, err := exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("%v (bench/traffic/tools.sh installs nginx-light)", err)
	}
	dir, err := os.MkdirTemp("", "tend-bench-traffic-nginx-")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var ups strings.Builder
	for _, r := range reps {
		fmt.Fprintf(&ups, "        server %s:8080;\n", r.ip)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, workers, dir, ups.String(), addr)), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}
	if _, err := harness.Run(ctx, bin, append(args, "-t", "-q")...); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	n := &nginx{dir: dir, exited: make(chan error, 1)}
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = os.Stderr, os.Stderr
	// Its own process group, so ^C reaches only the benchmark, which then stops nginx;
	// and the master dies with the benchmark should the benchmark be killed.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx: %w", err)
	}
	go func() { n.exited <- n.cmd.Wait() }()
	if err := n.waitListening(ctx, addr); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

func (n *nginx) waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-n.exited:
			n.exited <- err
			return fmt.Errorf("nginx exited at start: %v: %s", err, harness.Tail(n.errorLog(0), 600))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("nginx not listening on %s after 10s: %s", addr, harness.Tail(n.errorLog(0), 600))
}

// pids returns the master and its workers.
func (n *nginx) pids() []int {
	p := n.cmd.Process.Pid
	return append([]int{p}, harness.ChildPids(p)...)
}

// stop asks nginx to quit gracefully (SIGQUIT), then ends its process group (SIGKILL)
// after 10 s, and removes its directory.
func (n *nginx) stop() error {
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

// errorLog returns its error log from byte offset from on.
func (n *nginx) errorLog(from int64) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	if from > int64(len(b)) {
		return ""
	}
	return string(b[from:])
}

func (n *nginx) errorLogSize() int64 {
	st, err := os.Stat(filepath.Join(n.dir, "error.log"))
	if err != nil {
		return 0
	}
	return st.Size()
}

var nginxLogLine = regexp.MustCompile(`\[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*?)(?: while [^,]*)?(?:, client: .*)?$`)

// upstreamErrors counts the error log's lines by message (the level and text up to
// "while ..." or ", client:"), e.g. "error: connect() failed (111: Connection refused)".
func upstreamErrors(log string) map[string]int {
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
