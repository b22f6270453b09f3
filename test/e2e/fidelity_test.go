package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestContainerNameAndRelabelledBinds: a file's container_name is the replica's
// name through a kill and a start-first replacement, and a bind with :z reaches the
// engine in the form that relabels it, with its content visible inside.
func TestContainerNameAndRelabelledBinds(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.project("")
	cname := name + "-the-web"
	dir := filepath.Dir(file)
	if err := os.MkdirAll(filepath.Join(dir, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "site", "index.txt"), "relabelled\n")
	if err := os.MkdirAll(filepath.Join(dir, "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "private", "key.txt"), "private\n")
	writeFile(t, file, `
services:
  web:
    image: tend-demo:dev
    container_name: `+cname+`
    volumes: ["./site:/site:z", "./private:/private:ro,Z"]
    x-tend:
      liveness:
        http: {port: 8080, path: /health}
        interval: 500ms
        failure_threshold: 2
`)
	d.mustTend("up", "-f", file, "-p", name, "--wait", "--timeout", "1m")

	id := containerID(t, cname)
	if id == "" {
		t.Fatalf("no container named %s: %s", cname, projectContainers(t, name))
	}
	if got := docker(t, "inspect", "-f", "{{json .HostConfig.Binds}}", cname); !strings.Contains(got, ":/site:z") || !strings.Contains(got, ":/private:ro,Z") {
		t.Errorf("binds %s: want the :z bind and the read-only :Z one", got)
	}
	for path, want := range map[string]string{"/site/index.txt": "relabelled\n", "/private/key.txt": "private\n"} {
		out := filepath.Join(t.TempDir(), "f")
		docker(t, "cp", cname+":"+path, out)
		if got := readFile(t, out); got != want {
			t.Errorf("the bind's file %s reads %q inside", path, got)
		}
	}
	if reps := d.ps(name); len(reps) != 1 || reps[0].Container != cname {
		t.Errorf("tend ps: %+v, want one replica named %s", reps, cname)
	}

	// Killed from outside: started again under the same name.
	docker(t, "kill", cname)
	waitFor(t, 20*time.Second, cname+" running again", func() bool {
		return inspectGone(cname, "{{.State.Running}}") == "true"
	})

	// Sick: replaced start-first; the new replica takes the name over.
	post(t, cname, "/sick")
	id = replaced(t, d, name, cname, containerID(t, cname), 30*time.Second)
	if got := docker(t, "inspect", "-f", "{{.Name}}", id); got != "/"+cname {
		t.Errorf("the replacement is named %s, want /%s", got, cname)
	}
}

// TestUpNamedServicesOfAMenuProject: a project of alternatives (two services on one
// host port) runs a few services at a time, as `docker compose up SERVICE` runs it.
func TestUpNamedServicesOfAMenuProject(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	port := freePort(t)
	name, file := d.project(fmt.Sprintf(`
services:
  nginx:
    image: tend-demo:dev
    ports: ["%[1]d:8080"]
    depends_on: [php]
  apache:
    image: tend-demo:dev
    ports: ["%[1]d:8080"]
    depends_on: [php]
  php:
    image: tend-demo:dev
  redis:
    image: tend-demo:dev
`, port))
	if _, errOut, code := d.tend("up", "-f", file, "-p", name); code != exitInvalid || !strings.Contains(errOut, "is already published by service") {
		t.Fatalf("up of the whole menu: exit %d, %s; want the port conflict", code, errOut)
	}
	d.mustTend("up", "-f", file, "-p", name, "--wait", "nginx")
	services := func() string {
		var names []string
		for _, r := range d.ps(name) {
			names = append(names, r.Service)
		}
		return strings.Join(names, " ")
	}
	if got := services(); got != "nginx php" {
		t.Fatalf("after up nginx: services %q, want nginx and what it depends on", got)
	}
	nginx := containerID(t, name+"-nginx-1")
	waitFor(t, 10*time.Second, "nginx serving on its port", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	d.mustTend("up", "-f", file, "-p", name, "--wait", "redis")
	if got := services(); got != "nginx php redis" {
		t.Errorf("after up redis: services %q, want redis added and the others kept", got)
	}
	if containerID(t, name+"-nginx-1") != nginx {
		t.Error("up redis touched nginx")
	}
	if _, errOut, code := d.tend("up", "-f", file, "-p", name, "apache"); code != exitInvalid || !strings.Contains(errOut, `"nginx"`) || !strings.Contains(errOut, `already published by service "apache"`) {
		t.Errorf("up apache beside nginx: exit %d, %s; want the port conflict with nginx", code, errOut)
	}
	if got := services(); got != "nginx php redis" {
		t.Errorf("after the refused up: services %q", got)
	}
	if out := d.mustTend("config", "-f", file, "-p", name, "apache"); !strings.Contains(out, "name: apache") || strings.Contains(out, "name: nginx") {
		t.Errorf("config apache:\n%s", out)
	}
}

// TestNetworkModes: network_mode host, none and service:NAME run as the engine
// runs them, tend's probes reach them where they listen, and a replica sharing
// another's network follows that replica when it is replaced.
func TestNetworkModes(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	hostPort := freePort(t)
	name, file := d.project(fmt.Sprintf(`
services:
  web:
    image: tend-demo:dev
    x-tend:
      liveness:
        http: {port: 8080, path: /health}
        interval: 500ms
        failure_threshold: 2
  side:
    image: tend-demo:dev
    command: [-addr, ":9090", -name, side]
    network_mode: service:web
    x-tend:
      readiness:
        http: {port: 9090, path: /health}
  onhost:
    image: tend-demo:dev
    command: [-addr, "127.0.0.1:%d", -name, onhost]
    network_mode: host
    x-tend:
      readiness:
        http: {port: %d, path: /health}
  alone:
    image: tend-demo:dev
    network_mode: none
    healthcheck:
      test: [CMD, /demo, -probe, "http://127.0.0.1:8080/health"]
      interval: 500ms
`, hostPort, hostPort))
	d.mustTend("up", "-f", file, "-p", name, "--wait", "--timeout", "1m")

	web, side := name+"-web-1", name+"-side-1"
	mode := func(c string) string { return inspectGone(c, "{{.HostConfig.NetworkMode}}") }
	if got, want := mode(side), "container:"+containerID(t, web); got != want {
		t.Errorf("side's network mode %s, want %s", got, want)
	}
	if got := mode(name + "-onhost-1"); got != "host" {
		t.Errorf("onhost's network mode %s", got)
	}
	if got := mode(name + "-alone-1"); got != "none" {
		t.Errorf("alone's network mode %s", got)
	}
	get := func(url string) string {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return b.String()
	}
	// side answers on web's address; onhost on the host's loopback.
	if got := get("http://" + strings.Fields(containerIP(t, web))[0] + ":9090/"); !strings.Contains(got, `"side"`) {
		t.Errorf("GET web's address :9090 = %s, want side's answer", got)
	}
	if got := get(fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); !strings.Contains(got, `"onhost"`) {
		t.Errorf("GET 127.0.0.1:%d = %s, want onhost's answer", hostPort, got)
	}

	// web replaced: side follows it into the new replica's network.
	oldSide := containerID(t, side)
	post(t, web, "/sick")
	newWeb := replaced(t, d, name, web, containerID(t, web), 30*time.Second)
	waitFor(t, 30*time.Second, "side replaced into the new web's network", func() bool {
		id := containerID(t, side)
		ip := strings.Fields(inspectGone(web, "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"))
		return id != "" && id != oldSide && mode(side) == "container:"+newWeb &&
			len(ip) > 0 && strings.Contains(get("http://"+ip[0]+":9090/"), `"side"`)
	})
	if _, ok := findEvent(d.events(name), "side", "replace", "network-replaced"); !ok {
		t.Errorf("journal lacks side's replace with reason network-replaced: %+v", d.events(name))
	}
	waitFor(t, 20*time.Second, "every replica ready again", func() bool {
		for _, r := range d.ps(name) {
			if !r.Ready {
				return false
			}
		}
		return true
	})
}

// TestNetworkModeContainer: network_mode container:NAME shares the network of a
// container by its name, here one of the stack's own by its container_name; when
// that one is replaced, the sharer follows it, as with service:NAME.
func TestNetworkModeContainer(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.project("")
	anchor := name + "-anchor"
	writeFile(t, file, `
services:
  web:
    image: tend-demo:dev
    container_name: `+anchor+`
    x-tend:
      liveness:
        http: {port: 8080, path: /health}
        interval: 500ms
        failure_threshold: 2
  side:
    image: tend-demo:dev
    command: [-addr, ":9090", -name, side]
    network_mode: container:`+anchor+`
    depends_on: [web]
    x-tend:
      readiness:
        http: {port: 9090, path: /health}
`)
	d.mustTend("up", "-f", file, "-p", name, "--wait", "--timeout", "1m")
	side := name + "-side-1"
	if got, want := docker(t, "inspect", "-f", "{{.HostConfig.NetworkMode}}", side), "container:"+containerID(t, anchor); got != want {
		t.Errorf("side's network mode %s, want %s", got, want)
	}
	// side answers on the anchor's address, and from inside the anchor on its loopback.
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + strings.Fields(containerIP(t, anchor))[0] + ":9090/")
	if err != nil {
		t.Fatalf("GET the anchor's address :9090: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"side"`) {
		t.Errorf("GET the anchor's address :9090 = %s, want side's answer", b)
	}
	if out, _ := exec.Command("docker", "exec", anchor, "/demo", "-probe", "http://127.0.0.1:9090/health").CombinedOutput(); !strings.Contains(string(out), "200") {
		t.Errorf("side from inside the anchor: %s", out)
	}

	oldSide := containerID(t, side)
	post(t, anchor, "/sick")
	newAnchor := replaced(t, d, name, anchor, containerID(t, anchor), 30*time.Second)
	waitFor(t, 30*time.Second, "side replaced into the new anchor's network", func() bool {
		id := containerID(t, side)
		return id != "" && id != oldSide && inspectGone(side, "{{.HostConfig.NetworkMode}}") == "container:"+newAnchor
	})
}

// TestPortRangesAndSCTP: a host port range is served on its first free port; an
// sctp port goes to the engine, which publishes it, or says why it cannot.
func TestPortRangesAndSCTP(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	var held net.Listener
	for held == nil || held.Addr().(*net.TCPAddr).Port > 65000 {
		var err error
		if held, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		defer held.Close()
	}
	start := held.Addr().(*net.TCPAddr).Port
	name, file := d.project(fmt.Sprintf(`
services:
  web:
    image: tend-demo:dev
    ports: ["127.0.0.1:%d-%d:8080"]
  signal:
    image: tend-demo:dev
    ports: ["%d:9999/sctp"]
  stats:
    image: tend-demo:dev
    deploy: {replicas: 2}
    ports: ["127.0.0.1:%d-%d:9125/udp"]
`, start, start+20, freePort(t), start+30, start+40))
	d.mustTend("up", "-f", file, "-p", name)
	var served int
	waitFor(t, 30*time.Second, "web served on a port of its range", func() bool {
		for port := start + 1; port <= start+20 && served == 0; port++ {
			c := http.Client{Timeout: time.Second}
			if resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port)); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					served = port
				}
			}
		}
		return served != 0
	})
	if out := d.mustTend("ps", "-p", name); !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d", served)) {
		t.Errorf("tend ps does not show the bound port %d:\n%s", served, out)
	}
	// udp: the engine publishes each replica on a port of the range of its own.
	udp := map[int]bool{}
	waitFor(t, 30*time.Second, "both stats replicas published on the udp range", func() bool {
		for slot := 1; slot <= 2; slot++ {
			out, _ := exec.Command("docker", "port", fmt.Sprintf("%s-stats-%d", name, slot), "9125/udp").Output()
			var port int
			if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "127.0.0.1:%d", &port); err == nil {
				udp[port] = true
			}
		}
		return len(udp) == 2
	})
	for port := range udp {
		if port < start+30 || port > start+40 {
			t.Errorf("a stats replica is published on udp %d, outside %d-%d", port, start+30, start+40)
		}
	}
	// sctp: published by the engine where the kernel has SCTP; this machine's has
	// not, and then the engine's own reason must reach the user.
	waitFor(t, 30*time.Second, "signal published, or the engine's reason shown", func() bool {
		if strings.Contains(docker(t, "port", name+"-signal-1"), "9999/sctp") {
			return true
		}
		for _, e := range d.events(name) {
			if e.Service == "signal" && strings.Contains(e.Error, "protocol not supported") {
				return true
			}
		}
		return false
	})
}

// TestSecretsFromTheEnvironmentAndInlineConfigs: the values reach the container
// and nothing tend keeps or prints; a changed value replaces the replica.
func TestSecretsFromTheEnvironmentAndInlineConfigs(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.project(`
services:
  web:
    image: tend-demo:dev
    user: "65534:65534"
    secrets: [api_token]
    configs:
      - source: site
        target: /etc/site.conf
secrets:
  api_token:
    environment: E2E_API_TOKEN
configs:
  site:
    content: "color=${E2E_COLOR}"
`)
	const planted = "planted-e2e-secret-4711"
	upWith := func(token string) string {
		t.Helper()
		out, errOut, err := tendInEnv(d, []string{"E2E_API_TOKEN=" + token, "E2E_COLOR=blue"}, "up", "-f", file, "-p", name, "--wait", "--timeout", "1m")
		if err != nil {
			t.Fatalf("tend up: %v\n%s%s", err, out, errOut)
		}
		return out + errOut
	}
	upOut := upWith(planted)
	c := name + "-web-1"
	read := func(path string) string {
		out := filepath.Join(t.TempDir(), "f")
		docker(t, "cp", c+":"+path, out)
		return readFile(t, out)
	}
	if got := read("/run/secrets/api_token"); got != planted {
		t.Errorf("secret inside = %q", got)
	}
	if got := read("/etc/site.conf"); got != "color=blue" {
		t.Errorf("config inside = %q", got)
	}
	src := docker(t, "inspect", "-f", `{{range .Mounts}}{{if eq .Destination "/run/secrets/api_token"}}{{.Source}}{{end}}{{end}}`, c)
	if !strings.HasPrefix(src, "/dev/shm/") {
		t.Errorf("the secret's file is %s, want it on the tmpfs /dev/shm", src)
	}
	// Readable inside by the container's user (65534), as compose gives such files.
	if fi, err := os.Stat(src); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("the secret's file: %v %v, want mode 0444", fi, err)
	}

	// A changed value: a new replica with it.
	id := containerID(t, c)
	rotated := planted + "-rotated"
	upOut += upWith(rotated)
	waitFor(t, 30*time.Second, "web replaced with the new value", func() bool {
		return containerID(t, c) != id && containerID(t, c) != ""
	})
	if got := read("/run/secrets/api_token"); got != rotated {
		t.Errorf("secret after the change = %q", got)
	}

	// Neither value is anywhere tend keeps or prints, nor a plain digest of it
	// (which would let a reader of the store test guesses at a short secret).
	env := []string{"E2E_API_TOKEN=" + planted, "E2E_COLOR=blue"}
	config, _, _ := tendInEnv(d, env, "config", "-f", file, "-p", name)
	configJSON, _, _ := tendInEnv(d, env, "config", "--json", "-f", file, "-p", name)
	outputs := map[string]string{
		"up":          upOut,
		"config":      config,
		"config json": configJSON,
		"events":      d.mustTend("events", "--json", "-n", "0", "-p", name),
		"events view": d.mustTend("events", "-n", "0", "-p", name),
		"ps":          d.mustTend("ps", "--json", "-p", name),
		"ps view":     d.mustTend("ps", "-p", name),
		"inspect":     docker(t, "inspect", c),
	}
	for _, path := range []string{"/v1/projects", "/v1/replicas?project=" + name, "/v1/events?project=" + name, "/v1/traffic", "/metrics"} {
		outputs["API "+path] = curlUnix(t, d.socket, path)
	}
	d.stop() // its log is whole once it has stopped
	outputs["daemon log"] = d.log.String()
	filepath.WalkDir(d.data, func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := os.ReadFile(path)
			outputs["store file "+path] = string(b)
		}
		return nil
	})
	for _, value := range []string{planted, rotated} {
		sum := sha256.Sum256([]byte(value))
		digest := hex.EncodeToString(sum[:])
		for what, text := range outputs {
			if strings.Contains(text, value) {
				t.Errorf("the secret's value is in %s", what)
			}
			if strings.Contains(text, digest[:16]) {
				t.Errorf("the secret's plain digest is in %s", what)
			}
		}
	}
	if !strings.Contains(outputs["config"], "environment E2E_API_TOKEN") || !strings.Contains(outputs["API /v1/projects"], "/dev/shm/") {
		t.Errorf("config and the API should show where the secret comes from and its file:\n%s\n%s", outputs["config"], outputs["API /v1/projects"])
	}
}

func tendInEnv(d *daemon, env []string, args ...string) (string, string, error) {
	cmd := exec.Command(tendBin, args...)
	cmd.Env = append(append(os.Environ(), "TEND_SOCKET="+d.socket), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), err
}

// TestImageHealthcheckCounts: service_healthy waits on the HEALTHCHECK of the
// image when the compose file has none; with neither, up says so, naming both.
func TestImageHealthcheckCounts(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, file := d.project("")
	dir := filepath.Dir(file)
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "db", "Dockerfile"), "FROM "+demoImage+"\nHEALTHCHECK --interval=1s CMD [\"/demo\", \"-probe\", \"http://127.0.0.1:8080/health\"]\n")
	writeFile(t, file, `
services:
  web:
    image: tend-demo:dev
    depends_on:
      db: {condition: service_healthy}
  db:
    build: ./db
    image: `+name+`-db:checked
  plain:
    image: tend-demo:dev
`)
	d.mustTend("up", "-f", file, "-p", name, "--wait", "--timeout", "1m")
	reps := d.ps(name)
	for _, r := range reps {
		if !r.Ready {
			t.Errorf("%s/%d not ready: %+v", r.Service, r.Slot, r)
		}
	}
	if got := docker(t, "inspect", "-f", "{{.State.Health.Status}}", name+"-db-1"); got != "healthy" {
		t.Errorf("db's health %q", got)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", name+"-db:checked").Run() })

	// web waits for plain instead: its image has no HEALTHCHECK, nor has the file.
	writeFile(t, file, strings.Replace(readFile(t, file), "db: {condition: service_healthy}", "plain: {condition: service_healthy}", 1))
	_, errOut, code := d.tend("up", "-f", file, "-p", name)
	want := `service "web": depends_on: condition service_healthy needs a health check on service "plain", but neither its compose file nor its image ` + demoImage + ` has one`
	if code != exitInvalid || !strings.Contains(errOut, want) {
		t.Errorf("up: exit %d, %s; want %q", code, errOut, want)
	}
}

// TestFixedAddressesOnAnIPAMNetwork: a network with the file's subnet, a replica at
// its fixed address, reached there by another service (as a stack whose dns:
// points at a fixed address needs); replaced stop-first when sick, at the same address.
func TestFixedAddressesOnAnIPAMNetwork(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	// A subnet of its own per run: parallel runs must not overlap.
	third := 100 + rand.IntN(100)
	subnet, fixed := fmt.Sprintf("10.213.%d.0/24", third), fmt.Sprintf("10.213.%d.53", third)
	subnet6, fixed6 := fmt.Sprintf("fd7a:213:%x::/64", third), fmt.Sprintf("fd7a:213:%x::53", third)
	name, file := d.project(fmt.Sprintf(`
services:
  dns:
    image: tend-demo:dev
    networks:
      back:
        ipv4_address: %s
        ipv6_address: %s
    x-tend:
      liveness:
        http: {port: 8080, path: /health}
        interval: 500ms
        failure_threshold: 2
  app:
    image: tend-demo:dev
    networks: [back]
networks:
  back:
    enable_ipv6: true
    ipam:
      config:
        - subnet: %s
        - subnet: %s
`, fixed, fixed6, subnet, subnet6))
	d.mustTend("up", "-f", file, "-p", name, "--wait", "--timeout", "1m")
	dns := name + "-dns-1"
	if got := containerIP(t, dns); strings.TrimSpace(got) != fixed {
		t.Fatalf("dns at %q, want %s", got, fixed)
	}
	if got := docker(t, "network", "inspect", "-f", "{{.EnableIPv6}}{{range .IPAM.Config}} {{.Subnet}}{{end}}", name+"_back"); got != "true "+subnet+" "+subnet6 {
		t.Errorf("network %q, want IPv6 and subnets %s %s", got, subnet, subnet6)
	}
	ip6 := func() string {
		return inspectGone(dns, "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}")
	}
	if got := ip6(); got != fixed6 {
		t.Errorf("dns at IPv6 %q, want %s", got, fixed6)
	}
	probe := func() string {
		out, _ := exec.Command("docker", "exec", name+"-app-1", "/demo", "-probe", "http://"+fixed+":8080/health").CombinedOutput()
		return string(out)
	}
	if got := probe(); !strings.Contains(got, "200") {
		t.Errorf("app reaching dns at its fixed address: %s", got)
	}

	old := containerID(t, dns)
	post(t, dns, "/sick")
	waitFor(t, 30*time.Second, "dns replaced at the same address", func() bool {
		id := containerID(t, dns)
		return id != "" && id != old && inspectGone(dns, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}") == fixed && ip6() == fixed6 &&
			strings.Contains(probe(), "200")
	})
	e, ok := findEvent(d.events(name), "dns", "replace", "liveness")
	if !ok || !strings.Contains(e.Message, "stop-first") {
		t.Errorf("want a stop-first replace in the journal, got %+v", d.events(name))
	}
	if containerID(t, dns+"-next") != "" {
		t.Error("a replacement was started next to the fixed-address replica")
	}
}
