package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTendsOwnImage runs the daemon from tend's own image (packaging/
// Dockerfile, built by scripts/image.sh around this run's binary) as the
// README says: the engine's socket mounted, the data directory at the same
// path as on the host, the host's network. The CLI on the host brings a
// stack up through it, a replica killed from outside is restarted, and the
// published port answers through the proxy in tend's container.
func TestTendsOwnImage(t *testing.T) {
	t.Parallel()
	image := fmt.Sprintf("tend-self:e2e-%d", os.Getpid())
	build := exec.Command(filepath.Join(repoRoot(), "scripts/image.sh"))
	build.Env = append(os.Environ(), "TEND_BIN="+tendBin, "TEND_IMAGE="+image)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", image).Run() })

	dir := t.TempDir()
	d := &daemon{t: t, data: filepath.Join(dir, "data"), socket: filepath.Join(dir, "tend.sock")}
	name := fmt.Sprintf("tend-self-e2e-%d", os.Getpid())
	docker(t, "run", "-d", "--name", name, "--network", "host",
		"-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", dir+":"+dir,
		image, "serve", "--data", d.data, "--socket", d.socket)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Logf("tend's container log:\n%s", out)
		}
		_ = exec.Command("docker", "rm", "-f", name).Run()
	})
	waitFor(t, 20*time.Second, "the daemon's socket, from its container", func() bool {
		_, _, code := d.tend("ps")
		return code == 0
	})

	port := freePort(t)
	project, _ := d.up(fmt.Sprintf(`
services:
  web:
    image: tend-demo:dev
    ports: ["127.0.0.1:%d:8080"]
    healthcheck:
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 1s
`, port))
	t.Cleanup(func() {
		// tend first: running, it makes the removed replica again (it
		// left web-1 behind on every run).
		_ = exec.Command("docker", "rm", "-f", name).Run()
		removeProject(project)
	})
	replica := project + "-web-1"
	started := docker(t, "inspect", "-f", "{{.State.StartedAt}}", replica)
	docker(t, "kill", replica)
	waitFor(t, 20*time.Second, "the killed replica running again", func() bool {
		out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", replica).Output()
		f := strings.Fields(string(out))
		return err == nil && len(f) == 2 && f[0] == "true" && f[1] != started
	})
	waitFor(t, 20*time.Second, "the published port answering through tend's proxy in its container", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if _, ok := findEvent(d.events(project), "web", "restart", "exited"); !ok {
		t.Errorf("no restart journaled: %+v", d.events(project))
	}
}

// TestHealMetrics: a replica killed from outside shows in /metrics as a
// restart counted by its reason, with the service's replicas and readiness.
func TestHealMetrics(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(`
services:
  web:
    image: tend-demo:dev
    deploy:
      replicas: 2
`)
	docker(t, "kill", name+"-web-1")
	waitEvent(t, d, name, "web", "restart", "exited", 20*time.Second)
	want := []string{
		`tend_actions_total{action="restart",project="` + name + `",reason="exited",service="web"} 1`,
		`tend_service_replicas{count="desired",project="` + name + `",service="web"} 2`,
	}
	waitFor(t, 20*time.Second, "the restart and both replicas ready in /metrics", func() bool {
		m := curlUnix(t, d.socket, "/metrics")
		for _, w := range want {
			if !strings.Contains(m, w) {
				return false
			}
		}
		return strings.Contains(m, `tend_replicas_ready{project="`+name+`",service="web"} 2`)
	})
}
