package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helloSource is a tiny web server built from source by the tests: it answers
// every request with its greeting.
const helloSource = `package main

import (
	"fmt"
	"net/http"
)

const greeting = "hello from source"

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, greeting) })
	if err := http.ListenAndServe(":8080", nil); err != nil {
		panic(err)
	}
}
`

// writeFiles writes files (path relative to dir: content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, content)
	}
}

// compileHello builds helloSource, with greeting, statically into dir/hello:
// there is no Go image to compile in, so the binary goes into the context.
func compileHello(t *testing.T, dir, greeting string) {
	t.Helper()
	writeFiles(t, dir, map[string]string{
		"src/go.mod":  "module hello\n\ngo 1.22\n",
		"src/main.go": strings.Replace(helloSource, "hello from source", greeting, 1),
	})
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "hello"), ".")
	cmd.Dir = filepath.Join(dir, "src")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compile the test program: %v\n%s", err, out)
	}
}

// removeImagesLater removes the images a test built, after its project is gone
// (cleanups run last first, so this must be called before d.project).
func removeImagesLater(t *testing.T, refs func() []string) {
	t.Cleanup(func() {
		for _, ref := range refs() {
			if ref != "" {
				_ = exec.Command("docker", "image", "rm", ref).Run()
			}
		}
	})
}

func imageExists(ref string) bool {
	return exec.Command("docker", "image", "inspect", ref).Run() == nil
}

func get(t *testing.T, container string) string {
	t.Helper()
	ip := strings.Fields(containerIP(t, container))[0]
	c := http.Client{Timeout: 3 * time.Second}
	var body string
	waitFor(t, 10*time.Second, "an answer from "+container, func() bool {
		resp, err := c.Get("http://" + ip + ":8080/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = strings.TrimSpace(string(b))
		return true
	})
	return body
}

const webDockerfile = `FROM tend-demo:dev AS base
ARG NAME=unset
ENV DEMO_NAME=$NAME
FROM base AS final
LABEL stage=final
FROM base AS other
LABEL stage=other
`

func TestBuildAndRunFromSource(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	var name, firstAPI string
	removeImagesLater(t, func() []string { return []string{name + "-api", name + "-web", firstAPI} })
	name, file := d.project(`
services:
  api:
    build: ./api
  web:
    build:
      context: ./web
      dockerfile: web.Dockerfile
      target: final
      args: {NAME: built-web}
      labels: {io.example.team: e2e}
    deploy: {replicas: 2}
    healthcheck:
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 500ms
    depends_on: [api]
  db:
    image: tend-demo:dev
`)
	dir := filepath.Dir(file)
	compileHello(t, filepath.Join(dir, "api"), "hello from source")
	writeFiles(t, dir, map[string]string{
		"api/Dockerfile":     "FROM scratch\nCOPY hello /hello\nEXPOSE 8080\nENTRYPOINT [\"/hello\"]\n",
		"api/.dockerignore":  "*\n!hello\n",
		"web/web.Dockerfile": webDockerfile,
	})

	out := d.mustTend("up", "-f", file, "-p", name, "--wait")
	for _, want := range []string{"building service api: image " + name + "-api", "Step 2/4 : COPY hello /hello",
		"building service web: image " + name + "-web", "Successfully tagged " + name + "-web:latest", "is up: 4 replicas ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("up's output lacks %q:\n%s", want, out)
		}
	}
	if got := get(t, name+"-api-1"); got != "hello from source" {
		t.Errorf("api answers %q", got)
	}
	if env := docker(t, "inspect", "-f", "{{.Config.Env}}", name+"-web-2"); !strings.Contains(env, "DEMO_NAME=built-web") {
		t.Errorf("web's build arg did not reach the image: %s", env)
	}
	if labels := docker(t, "image", "inspect", "-f", "{{.Config.Labels}}", name+"-web"); !strings.Contains(labels, "stage:final") || !strings.Contains(labels, "io.example.team:e2e") {
		t.Errorf("web image labels %s: want the target stage's and the build section's", labels)
	}
	for _, svc := range []string{"api", "web"} {
		if e, ok := findEvent(d.events(name), svc, "build", "missing"); !ok || !strings.Contains(e.Message, "built image "+name+"-"+svc) {
			t.Errorf("journal lacks the build of %s: %+v", svc, e)
		}
	}

	// New source, no --build: the image exists, so it is used as it is.
	ids := func() string {
		return docker(t, "inspect", "-f", "{{.Id}}", name+"-api-1", name+"-web-1", name+"-web-2")
	}
	before := ids()
	firstAPI = docker(t, "image", "inspect", "-f", "{{.Id}}", name+"-api") // left without a name by the rebuild
	compileHello(t, filepath.Join(dir, "api"), "hello again")
	if out := d.mustTend("up", "-f", file, "-p", name, "--wait"); strings.Contains(out, "building") {
		t.Errorf("up without --build rebuilt an existing image:\n%s", out)
	}
	if ids() != before {
		t.Error("up without --build replaced replicas")
	}

	// --build: api's image changes and its replica is replaced; web's comes
	// from the engine's cache unchanged, and its replicas stay.
	d.mustTend("up", "-f", file, "-p", name, "--build", "--wait")
	after := strings.Fields(ids())
	if b := strings.Fields(before); after[0] == b[0] || after[1] != b[1] || after[2] != b[2] {
		t.Errorf("after up --build: want api replaced and web kept\nbefore %v\nafter  %v", b, after)
	}
	if got := get(t, name+"-api-1"); got != "hello again" {
		t.Errorf("rebuilt api answers %q", got)
	}
	if e, ok := findEvent(d.events(name), "web", "build", "requested"); !ok || !strings.HasSuffix(e.Message, "unchanged") {
		t.Errorf("web's rebuild should be journaled as unchanged: %+v", e)
	}
}

func TestBuildFailureChangesNothing(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	var name string
	removeImagesLater(t, func() []string { return []string{name + "-bad", name + "-good"} })
	name, file := d.project(`
services:
  bad:
    build: ./bad
  good:
    build: ./good
  plain:
    image: tend-demo:dev
    environment: {COLOR: blue}
`)
	dir := filepath.Dir(file)
	failingRun := "FROM tend-demo:dev\nLABEL part=bad\nRUN [\"/demo\", \"-exit-code\", \"3\"]\n"
	writeFiles(t, dir, map[string]string{
		"bad/Dockerfile":  failingRun,
		"good/Dockerfile": "FROM tend-demo:dev\nLABEL part=good\n",
	})

	// A first up whose build fails starts nothing.
	out, errOut, code := d.tend("up", "-f", file, "-p", name, "--wait")
	want := `tend: service "bad": build: step 3/3 (RUN ["/demo", "-exit-code", "3"]): The command '/demo -exit-code 3' returned a non-zero code: 3`
	if code != exitInvalid || strings.TrimSpace(errOut) != want {
		t.Errorf("up with a failing step: exit %d, stderr:\n%s\nwant exit %d and\n%s", code, errOut, exitInvalid, want)
	}
	if !strings.Contains(out, "Step 3/3 : RUN") || !strings.Contains(out, "job: exiting with status 3") {
		t.Errorf("the build's output did not reach the user:\n%s", out)
	}
	if cs := projectContainers(t, name, "-aq"); cs != "" {
		t.Errorf("containers after a failed build: %s", cs)
	}
	if nets := docker(t, "network", "ls", "-q", "--filter", "label=io.tend.project="+name); nets != "" {
		t.Errorf("networks after a failed build: %s", nets)
	}
	if _, errOut, code := d.tend("ps", "-p", name); code != exitNotFound {
		t.Errorf("the daemon knows the project after a failed build: exit %d %s", code, errOut)
	}
	if imageExists(name + "-bad") {
		t.Error("a failed build left a tagged image")
	}

	// A running stack stays as it is when a later build fails, even with a
	// changed compose file.
	writeFile(t, filepath.Join(dir, "bad/Dockerfile"), "FROM tend-demo:dev\nLABEL part=bad\n")
	d.mustTend("up", "-f", file, "-p", name, "--wait")
	ids := docker(t, "inspect", "-f", "{{.Id}}", name+"-bad-1", name+"-good-1", name+"-plain-1")
	writeFile(t, filepath.Join(dir, "bad/Dockerfile"), "FROM tend-demo:dev\nCOPY missing.txt /\n")
	writeFile(t, file, strings.Replace(readFile(t, file), "blue", "green", 1))
	_, errOut, code = d.tend("up", "-f", file, "-p", name, "--build", "--wait")
	want = `tend: service "bad": build: step 2/2 (COPY missing.txt /): COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist`
	if code != exitInvalid || strings.TrimSpace(errOut) != want {
		t.Errorf("up --build with a missing file: exit %d, stderr:\n%s\nwant exit %d and\n%s", code, errOut, exitInvalid, want)
	}
	time.Sleep(500 * time.Millisecond) // room for a change that should not come
	if now := docker(t, "inspect", "-f", "{{.Id}}", name+"-bad-1", name+"-good-1", name+"-plain-1"); now != ids {
		t.Errorf("replicas changed after a failed build:\nbefore %s\nafter  %s", ids, now)
	}
	if env := docker(t, "inspect", "-f", "{{.Config.Env}}", name+"-plain-1"); !strings.Contains(env, "COLOR=blue") {
		t.Errorf("the changed file was handed over despite the failed build: %s", env)
	}
	ups := 0
	for _, e := range d.events(name) {
		if e.Action == "up" {
			ups++
		}
	}
	if ups != 1 {
		t.Errorf("%d desired states handed over, want 1 (the failed ups hand none)", ups)
	}
	if e, ok := findEvent(d.events(name), "bad", "build", "requested"); !ok || !strings.Contains(e.Error, "COPY missing.txt") {
		t.Errorf("journal lacks the failed build: %+v", e)
	}
}

func TestBuildCommandBuildsWithoutStarting(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	var name string
	removeImagesLater(t, func() []string { return []string{name + "-a", name + "-b"} })
	name, file := d.project(`
services:
  a:
    build: ./a
  b:
    build:
      context: ./b
      dockerfile_inline: |
        FROM tend-demo:dev
        LABEL part=b
  c:
    image: tend-demo:dev
`)
	writeFiles(t, filepath.Dir(file), map[string]string{"a/Dockerfile": "FROM tend-demo:dev\nLABEL part=a\n", "b/README": "b"})

	out := d.mustTend("build", "-f", file, "-p", name, "b")
	if !strings.Contains(out, "building service b: image "+name+"-b") || strings.Contains(out, "service a") {
		t.Errorf("tend build b:\n%s", out)
	}
	if !imageExists(name+"-b") || imageExists(name+"-a") {
		t.Errorf("after tend build b: want image %s-b only", name)
	}
	out = d.mustTend("build", "-f", file, "-p", name)
	if !strings.Contains(out, "built image "+name+"-a for service a") || !strings.Contains(out, "built image "+name+"-b for service b") {
		t.Errorf("tend build builds every service with a build section:\n%s", out)
	}
	if label := docker(t, "image", "inspect", "-f", "{{.Config.Labels.part}}", name+"-b"); label != "b" {
		t.Errorf("inline Dockerfile: label part=%q", label)
	}
	if cs := projectContainers(t, name, "-aq"); cs != "" {
		t.Errorf("tend build started containers: %s", cs)
	}
	if _, _, code := d.tend("ps", "-p", name); code != exitNotFound {
		t.Errorf("tend build handed the project over: ps exit %d", code)
	}

	if _, errOut, code := d.tend("build", "-f", file, "-p", name, "nosuch"); code != exitInvalid || strings.TrimSpace(errOut) != "tend: no such service: nosuch" {
		t.Errorf("unknown service: exit %d, %s", code, errOut)
	}
	if out, errOut, code := d.tend("build", "-f", file, "-p", name, "c"); code != 0 || !strings.Contains(errOut, "service c has no build section") || strings.Contains(out, "building") {
		t.Errorf("service without a build section: exit %d\n%s\n%s", code, out, errOut)
	}
}

// The CLI's exit codes the build tests check (README: exit codes).
const (
	exitInvalid  = 2
	exitNotFound = 3
)
