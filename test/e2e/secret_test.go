package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// socketGet reads a path of the API on the daemon's socket.
func (d *daemon) socketGet(path string) string {
	d.t.Helper()
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	resp, err := c.Get("http://tend" + path)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// secretFile is what the container has at path, read with docker cp.
func secretFile(t *testing.T, container, path string) string {
	t.Helper()
	out, err := exec.Command("docker", "cp", container+":"+path, "-").Output()
	if err != nil {
		t.Fatalf("docker cp %s:%s: %v", container, path, err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(tr)
	return string(b)
}

// TestPlantedSecretsStayOut plants secrets in a compose file (a secret from a
// file, one inline, a password in environment:), runs and changes the stack,
// and greps everything tend says for them: the journal, the daemon's log,
// the CLI's output and every API answer. The replica has them all.
func TestPlantedSecretsStayOut(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--listen", freeAddr(t))
	const fromFile, inline, env = "PLANTfile-7c1d9a", "PLANTinline-52be07", "PLANTenv-e93a41"
	name, file := d.project(`
services:
  web:
    image: tend-demo:dev
    environment:
      DB_PASSWORD: ` + env + `
    secrets: [from_file, inline]
secrets:
  from_file:
    file: ./token.txt
  inline:
    environment: TEND_E2E_PLANTED
`)
	if err := os.WriteFile(filepath.Join(filepath.Dir(file), "token.txt"), []byte(fromFile), 0o600); err != nil {
		t.Fatal(err)
	}
	var said []string // everything tend printed or answered
	secretEnv := inline
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(tendBin, args...)
		cmd.Env = append(os.Environ(), "TEND_SOCKET="+d.socket, "TEND_E2E_PLANTED="+secretEnv)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		code := 0
		if err := cmd.Run(); err != nil {
			code = -1
		}
		out, errOut := o.String(), e.String()
		if code != 0 {
			t.Fatalf("tend %v: exit %d\n%s%s", args, code, out, errOut)
		}
		said = append(said, out, errOut)
	}
	run("up", "-f", file, "-p", name, "--wait")
	container := name + "-web-1"
	if got := secretFile(t, container, "/run/secrets/from_file"); got != fromFile {
		t.Errorf("the replica's from_file secret: %q", got)
	}
	if got := secretFile(t, container, "/run/secrets/inline"); got != inline {
		t.Errorf("the replica's inline secret: %q", got)
	}
	if got := docker(t, "inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", container); !strings.Contains(got, "DB_PASSWORD="+env) {
		t.Errorf("the replica's environment:\n%s", got)
	}

	// A changed secret and password roll the service: the journal says why without the values.
	compose, _ := os.ReadFile(file)
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(string(compose), env, env+"2")), 0o644); err != nil {
		t.Fatal(err)
	}
	secretEnv = inline + "2"
	run("up", "-f", file, "-p", name, "--wait")
	run("ps", "-p", name)
	run("ps", "--json", "-p", name)
	run("events", "--json", "-n", "0")
	run("events", "-n", "0")
	run("config", "-f", file, "-p", name, "--quiet")
	for _, path := range []string{"/v1/projects", "/v1/replicas", "/v1/events", "/v1/scale", "/v1/traffic", "/metrics"} {
		said = append(said, d.socketGet(path))
	}
	d.stop()
	said = append(said, d.log.String())
	all := strings.Join(said, "\n")
	for _, secret := range []string{fromFile, inline, env} {
		if i := strings.Index(all, secret); i >= 0 {
			t.Errorf("the planted secret %s shows: ...%s...", secret, all[max(0, i-300):min(len(all), i+100)])
		}
	}
	if !strings.Contains(all, "DB_PASSWORD") {
		t.Error("the environment's names are gone too; only the values are secret")
	}
}
