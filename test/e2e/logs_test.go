package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLogsAndInspect: `tend logs SERVICE` prints every replica's output
// after its container's name, `SERVICE/N` one replica's, `-f` goes on live
// and takes up a replica killed from outside and started again; `tend
// inspect` prints the service as tend runs it.
func TestLogsAndInspect(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  web:
    image: tend-demo:dev
    deploy:
      replicas: 2
`)
	one, two := name+"-web-1", name+"-web-2"
	post(t, one, "/log?line=first-of-one")
	post(t, two, "/log?line=first-of-two")
	waitFor(t, 10*time.Second, "both lines in tend logs", func() bool {
		out := d.mustTend("logs", "web", "-p", name)
		return strings.Contains(out, one+" | first-of-one") && strings.Contains(out, two+" | first-of-two")
	})
	if out := d.mustTend("logs", "web/2", "-p", name); strings.Contains(out, one+" |") || !strings.Contains(out, two+" | first-of-two") {
		t.Errorf("tend logs web/2 printed other replicas' lines or not its own:\n%s", out)
	}
	if _, stderr, code := d.tend("logs", "nope", "-p", name); code == 0 || !strings.Contains(stderr, `no service "nope"`) {
		t.Errorf("logs of a service that does not exist: code %d, %q", code, stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := exec.CommandContext(ctx, tendBin, "logs", "web", "-f", "--tail", "1", "-p", name)
	follow.Env = append(os.Environ(), "TEND_SOCKET="+d.socket)
	follow.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var mu sync.Mutex
	var live bytes.Buffer
	follow.Stdout = writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return live.Write(b) })
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); follow.Wait() }()
	seen := func(s string) bool { mu.Lock(); defer mu.Unlock(); return strings.Contains(live.String(), s) }
	waitFor(t, 10*time.Second, "the tail of each replica", func() bool {
		return seen(one+" | first-of-one") && seen(two+" | first-of-two")
	})
	post(t, two, "/log?line=live-line")
	waitFor(t, 10*time.Second, "a line printed while following", func() bool { return seen(two + " | live-line") })
	docker(t, "kill", one)
	waitEvent(t, d, name, "web", "restart", "exited", 20*time.Second)
	post(t, one, "/log?line=after-the-kill")
	waitFor(t, 10*time.Second, "the restarted replica's line", func() bool { return seen(one + " | after-the-kill") })
	mu.Lock()
	if n := strings.Count(live.String(), one+" | first-of-one"); n != 1 {
		t.Errorf("the restarted replica's old output came %d times, want once:\n%s", n, live.String())
	}
	mu.Unlock()

	var in struct {
		Project  string                 `json:"project"`
		Spec     struct{ Image string } `json:"spec"`
		Scale    struct{ Desired int }  `json:"scale"`
		Replicas []struct {
			Slot  int  `json:"slot"`
			Ready bool `json:"ready"`
		} `json:"replicas"`
	}
	out := d.mustTend("inspect", "web/2", "-p", name)
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("tend inspect: %v\n%s", err, out)
	}
	if in.Project != name || !strings.HasPrefix(in.Spec.Image, "tend-demo:") || in.Scale.Desired != 2 || len(in.Replicas) != 1 || in.Replicas[0].Slot != 2 {
		t.Errorf("tend inspect web/2: %+v\n%s", in, out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
