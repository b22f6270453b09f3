// Command isolation measures what tend's quarantine and request breaker buy,
// against the named peers, in one run:
//
//   - restarts spent over -duration (default 5m) on a service that can never
//     start (its command is a bad flag): tend (quarantine with its defaults)
//     against Docker's `restart: always` (docker run --restart always), in
//     the same minutes; Swarm's default is its documented fixed 5 s delay
//     (restart_policy.delay), so duration/5s, stated, not run;
//   - the time tend takes to quarantine it, and how fast its port answers then;
//   - a caller's latency to a dependency that hangs (the demo's /slow), with
//     the caller's own 2 s timeout: through tend's breaker (latency 200ms)
//     against straight to the replica;
//   - the time from fixing a quarantined service (the file it needs appears)
//     to its restore, and to its first 200;
//   - the rest keeps serving: front (which calls back) and an unrelated
//     service under load while back is healthy, answers 500s, hangs and
//     crash-loops, phase by phase in the same run (neighbours.go).
//
// Usage (as root; see bench/README.md):
//
//	DEMO_IMAGE=tend-demo:isolate examples/demo/build.sh
//	go build -o /tmp/tend ./cmd/tend && go run ./bench/isolation -tend /tmp/tend -image tend-demo:isolate
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

type entry struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
}

func main() {
	bin := flag.String("tend", "/tmp/tend", "tend binary")
	image := flag.String("image", "tend-demo:isolate", "demo image (DEMO_IMAGE=... examples/demo/build.sh)")
	duration := flag.Duration("duration", 5*time.Minute, "how long the never-starting service is left to each peer")
	hang := flag.Duration("hang", 20*time.Second, "how long callers call the hanging dependency")
	phase := flag.Duration("phase", 20*time.Second, "how long each phase of the rest-keeps-serving part lasts")
	only := flag.String("only", "", `"rest": run only the rest-keeps-serving part`)
	flag.Parse()
	if err := run(*bin, *image, *duration, *hang, *phase, *only); err != nil {
		fmt.Fprintln(os.Stderr, "isolation:", err)
		os.Exit(1)
	}
}

func run(bin, image string, duration, hang, phase time.Duration, only string) error {
	ctx := context.Background()
	if why := harness.TendMissing(bin); why != "" {
		return fmt.Errorf("%s", why)
	}
	t, err := harness.StartTend(ctx, bin)
	if err != nil {
		return err
	}
	defer t.Stop()
	projects := []string{"isobench-never", "isobench-hang", "isobench-fix", "isobench-rest"}
	defer func() {
		for _, p := range projects {
			t.Run(ctx, "down", "-p", p)
		}
		exec.Command("docker", "rm", "-f", "isobench-docker").Run()
	}()
	exec.Command("docker", "rm", "-f", "isobench-docker").Run()
	if only == "rest" {
		fmt.Printf("isolation benchmark, %s; image %s; the rest-keeps-serving part only\n\n", time.Now().UTC().Format("2006-01-02 15:04"), image)
		report, err := neighbours(ctx, t, image, phase)
		fmt.Print(report)
		return err
	}

	fmt.Printf("isolation benchmark, %s; image %s; never-starting service left %s to each peer\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), image, duration)

	// Part 1: the never-starting service, tend and docker side by side.
	neverPort := freePort()
	up := time.Now()
	if err := upFile(ctx, t, "isobench-never", fmt.Sprintf(`
services:
  never:
    image: %s
    command: ["-no-such-flag"]
    ports: ["127.0.0.1:%d:8080"]
`, image, neverPort), false); err != nil {
		return err
	}
	if out, err := exec.Command("docker", "run", "-d", "--name", "isobench-docker", "--restart", "always", image, "-no-such-flag").CombinedOutput(); err != nil {
		return fmt.Errorf("docker run: %v: %s", err, out)
	}
	dockerUp := time.Now()

	var wg sync.WaitGroup
	var hangReport, fixReport string
	var hangErr, fixErr error
	wg.Go(func() { hangReport, hangErr = hanging(ctx, t, image, hang) })
	wg.Go(func() { fixReport, fixErr = fixing(ctx, t, image) })

	q, err := waitEntry(ctx, t, "isobench-never", "never", "quarantine", 2*time.Minute)
	if err != nil {
		return err
	}
	toQuarantine := q.Time.Sub(up)
	var fallback []time.Duration
	for range 50 {
		if d, code := timedGet(fmt.Sprintf("http://127.0.0.1:%d/", neverPort), ""); code == 503 {
			fallback = append(fallback, d)
		}
	}
	wg.Wait()
	if hangErr != nil {
		return hangErr
	}
	if fixErr != nil {
		return fixErr
	}
	time.Sleep(time.Until(up.Add(duration)))
	es, err := events(ctx, t, "isobench-never")
	if err != nil {
		return err
	}
	tendRestarts := 0
	for _, e := range es {
		if e.Action == "restart" && e.Time.Sub(up) <= duration {
			tendRestarts++
		}
	}
	time.Sleep(time.Until(dockerUp.Add(duration)))
	out, err := exec.Command("docker", "inspect", "-f", "{{.RestartCount}}", "isobench-docker").Output()
	if err != nil {
		return fmt.Errorf("docker inspect: %v", err)
	}
	dockerRestarts, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	swarm := int(duration / (5 * time.Second))

	fmt.Printf("restarts spent on a service that never starts, over %s:\n", duration)
	fmt.Printf("  %-40s %5d   (quarantined after %.1fs; its port then answered 503 in %s median, %s max, %d GETs)\n",
		"tend (quarantine defaults)", tendRestarts, toQuarantine.Seconds(), median(fallback), slices.Max(fallback), len(fallback))
	fmt.Printf("  %-40s %5d   (its callers get a refused connection: nothing listens)\n", "docker restart: always (docker run)", dockerRestarts)
	fmt.Printf("  %-40s %5d   (documented fixed 5s delay, duration/5s; not run)\n", "swarm default restart_policy", swarm)
	fmt.Printf("  ratio docker/tend %.1fx, swarm/tend %.1fx\n\n", float64(dockerRestarts)/float64(max(tendRestarts, 1)), float64(swarm)/float64(max(tendRestarts, 1)))
	fmt.Print(hangReport)
	fmt.Print(fixReport)
	report, err := neighbours(ctx, t, image, phase)
	fmt.Print(report)
	return err
}

// hanging measures callers of a dependency that hangs, through tend's breaker and straight.
func hanging(ctx context.Context, t *harness.Tend, image string, d time.Duration) (string, error) {
	port := freePort()
	if err := upFile(ctx, t, "isobench-hang", fmt.Sprintf(`
services:
  back:
    image: %s
    ports: [{target: 8080, published: "%d", host_ip: 127.0.0.1, app_protocol: http}]
    x-tend:
      breaker: {latency: 200ms}
      fallback: {status: 503, body: "back is slow; degraded answer"}
`, image, port), true); err != nil {
		return "", err
	}
	ip, err := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "isobench-hang-back-1").Output()
	if err != nil {
		return "", fmt.Errorf("docker inspect: %v", err)
	}
	direct := "http://" + strings.TrimSpace(string(ip)) + ":8080/"
	resp, err := http.Post(direct+"slow?ms=600000", "text/plain", nil)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	via := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var mu sync.Mutex
	lat := map[string][]time.Duration{}
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, target := range []struct{ name, url string }{{"through tend (breaker latency 200ms)", via}, {"straight to the replica", direct}} {
		for range 10 {
			wg.Go(func() {
				for time.Now().Before(end) {
					took, _ := timedGet(target.url, "")
					mu.Lock()
					lat[target.name] = append(lat[target.name], took)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	es, _ := events(ctx, t, "isobench-hang")
	opened := "never"
	for _, e := range es {
		if e.Action == "breaker-open" {
			opened = e.Message
			break
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "a caller's latency to a dependency that hangs (10 callers each, 2s client timeout, %s):\n", d)
	for _, name := range []string{"through tend (breaker latency 200ms)", "straight to the replica"} {
		l := lat[name]
		slices.Sort(l)
		waited := 0
		for _, x := range l {
			if x >= time.Second {
				waited++
			}
		}
		fmt.Fprintf(&b, "  %-40s p50 %-10s p99 %-10s max %-10s calls %d, %d of them waited 1s or more\n", name, median(l),
			l[len(l)*99/100].Round(10*time.Microsecond), l[len(l)-1].Round(time.Millisecond), len(l), waited)
	}
	fmt.Fprintf(&b, "  breaker: %s\n\n", opened)
	return b.String(), nil
}

// fixing measures the time from fixing a quarantined service to its restore.
func fixing(ctx context.Context, t *harness.Tend, image string) (string, error) {
	dir, err := os.MkdirTemp("", "isobench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	port := freePort()
	up := time.Now()
	if err := upFile(ctx, t, "isobench-fix", fmt.Sprintf(`
services:
  pay:
    image: %s
    environment: {DEMO_REQUIRE: /state/ok}
    volumes: ["%s:/state"]
    ports: ["127.0.0.1:%d:8080"]
    x-tend:
      quarantine: {retry: 5s, probation: 5s}
`, image, dir, port), false); err != nil {
		return "", err
	}
	q, err := waitEntry(ctx, t, "isobench-fix", "pay", "quarantine", 2*time.Minute)
	if err != nil {
		return "", err
	}
	fixed := time.Now()
	if err := os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644); err != nil {
		return "", err
	}
	servedc := make(chan time.Time, 1)
	go func() {
		for time.Since(fixed) < 2*time.Minute {
			if _, code := timedGet(fmt.Sprintf("http://127.0.0.1:%d/", port), ""); code == 200 {
				servedc <- time.Now()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		servedc <- time.Time{}
	}()
	r, err := waitEntry(ctx, t, "isobench-fix", "pay", "restore", 2*time.Minute)
	if err != nil {
		return "", err
	}
	served := <-servedc
	var b strings.Builder
	fmt.Fprintf(&b, "quarantine and restore (quarantine {retry: 5s, probation: 5s}):\n")
	fmt.Fprintf(&b, "  up to quarantine        %.1fs\n", q.Time.Sub(up).Seconds())
	fmt.Fprintf(&b, "  fix to restore          %.1fs (the next trial, then 5s of probation; at most retry + start + probation)\n", r.Time.Sub(fixed).Seconds())
	fmt.Fprintf(&b, "  fix to first 200        %.1fs (the trial replica takes traffic once ready, before the restore)\n", served.Sub(fixed).Seconds())
	return b.String(), nil
}

func upFile(ctx context.Context, t *harness.Tend, project, compose string, wait bool) error {
	if wait {
		return t.Up(ctx, project, project+".yaml", compose, 2*time.Minute)
	}
	path := filepath.Join(t.Dir, project+".yaml")
	if err := os.WriteFile(path, []byte(compose), 0o644); err != nil {
		return err
	}
	_, err := t.Run(ctx, "up", "-f", path, "-p", project)
	return err
}

func events(ctx context.Context, t *harness.Tend, project string) ([]entry, error) {
	out, err := t.Run(ctx, "events", "--json", "-n", "0", "-p", project)
	if err != nil {
		return nil, err
	}
	var es []entry
	for _, line := range strings.Split(out, "\n") {
		var e entry
		if json.Unmarshal([]byte(line), &e) == nil {
			es = append(es, e)
		}
	}
	return es, nil
}

func waitEntry(ctx context.Context, t *harness.Tend, project, service, action string, limit time.Duration) (entry, error) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		es, err := events(ctx, t, project)
		if err != nil {
			return entry{}, err
		}
		for _, e := range es {
			if e.Service == service && e.Action == action {
				return e, nil
			}
		}
	}
	return entry{}, fmt.Errorf("%s: no %s of %s within %s", project, action, service, limit)
}

var client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// timedGet is one GET and how long the caller waited for it (its timeout at most).
func timedGet(url, host string) (time.Duration, int) {
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return time.Since(start), 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), resp.StatusCode
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Microsecond)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
