package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// The rest keeps serving (issue 15, scope 4): front calls back through
// tend's in-stack address and degrades when back fails; other shares the
// network and has nothing to do with back. Under a steady load on front and
// other, back is healthy, then answers 500s, then hangs, then crash-loops
// (it crashes, and a file it needs at start is gone: it exits at every
// start until quarantined); each phase is measured alike.
const restStack = `
services:
  back:
    image: %[1]s
    environment: {DEMO_NAME: back, DEMO_REQUIRE: /state/ok}
    volumes: ["%[5]s:/state"]
    ports: [{target: 8080, published: "%[2]d", host_ip: 127.0.0.1, app_protocol: http}]
    networks: [app]
    deploy: {replicas: 2}
    x-tend:
      quarantine: {retry: 10s, probation: 5s}
      fallback: {status: 503, body: "back is isolated; try later"}
      breaker: {latency: 500ms, open: 3s}
  front:
    image: %[1]s
    environment: {DEMO_NAME: front, DEMO_BACKEND: "http://back:8080/"}
    ports: [{target: 8080, published: "%[3]d", host_ip: 127.0.0.1, app_protocol: http}]
    networks: [app]
  other:
    image: %[1]s
    environment: {DEMO_NAME: other}
    ports: ["127.0.0.1:%[4]d:8080"]
    networks: [app]
networks:
  app: {}
`

// phaseFigures is what the clients of one service saw in one phase.
type phaseFigures struct {
	lat      []time.Duration
	failed   int // no answer, or not 200
	degraded int // front's 200 "degraded" answers
}

func (f *phaseFigures) line() string {
	l := slices.Clone(f.lat)
	slices.Sort(l)
	if len(l) == 0 {
		return "no requests"
	}
	ok := 100 * float64(len(l)-f.failed) / float64(len(l))
	return fmt.Sprintf("%7d req  %8.3f %% ok  p50 %-9s p99 %-9s max %-8s", len(l), ok,
		l[len(l)/2].Round(10*time.Microsecond), l[len(l)*99/100].Round(10*time.Microsecond), l[len(l)-1].Round(time.Millisecond))
}

// neighbours runs the phases, each d long, and reports the figures.
func neighbours(ctx context.Context, t *harness.Tend, image string, d time.Duration) (string, error) {
	const project = "isobench-rest"
	backPort, frontPort, otherPort := freePort(), freePort(), freePort()
	dir, err := os.MkdirTemp("", "isobench-rest-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	need := filepath.Join(dir, "ok")
	if err := os.WriteFile(need, nil, 0o644); err != nil {
		return "", err
	}
	if err := upFile(ctx, t, project, fmt.Sprintf(restStack, image, backPort, frontPort, otherPort, dir), true); err != nil {
		return "", err
	}
	frontURL := fmt.Sprintf("http://127.0.0.1:%d/call", frontPort)
	backs := func(path string) error {
		for _, name := range []string{project + "-back-1", project + "-back-2"} {
			ip, err := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name).Output()
			if err != nil {
				return fmt.Errorf("docker inspect %s: %v", name, err)
			}
			resp, err := http.Post("http://"+strings.TrimSpace(string(ip))+":8080"+path, "text/plain", nil)
			if err != nil {
				return err
			}
			resp.Body.Close()
		}
		return nil
	}
	phases := []struct {
		name  string
		begin func() error
	}{
		{"back healthy", func() error { return nil }},
		{"back answers 500", func() error { return backs("/fail?code=500") }},
		{"back hangs (10 min per request)", func() error { return backs("/slow?ms=600000") }},
		{"back crash-loops (quarantined)", func() error {
			if err := os.Remove(need); err != nil {
				return err
			}
			return backs("/crash")
		}},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the rest keeps serving while back fails (4 closed-loop clients on front's /call and 4 on other's /, 2s client timeout, %s a phase):\n", d)
	fmt.Fprintf(&b, "  %-34s %-7s %s\n", "phase", "service", "figures")
	for i, ph := range phases {
		if i > 0 && i < 3 { // undo the last fault; the next phase begins once front is served by back again
			if err := backs("/heal"); err != nil {
				return "", err
			}
			if err := servedAgain(frontURL, time.Minute); err != nil {
				return "", fmt.Errorf("after %s: %w", phases[i-1].name, err)
			}
		}
		if err := ph.begin(); err != nil {
			return "", fmt.Errorf("%s: %w", ph.name, err)
		}
		front, other := load(frontURL, fmt.Sprintf("http://127.0.0.1:%d/", otherPort), d)
		fmt.Fprintf(&b, "  %-34s %-7s %s (%d degraded)\n", ph.name, "front", front.line(), front.degraded)
		fmt.Fprintf(&b, "  %-34s %-7s %s\n", "", "other", other.line())
	}
	es, _ := events(ctx, t, project)
	var acts []string
	for _, e := range es {
		if e.Service == "back" && (strings.HasPrefix(e.Action, "breaker") || e.Action == "quarantine") {
			acts = append(acts, fmt.Sprintf("%s %s", e.Time.Format("15:04:05.0"), e.Action))
		}
	}
	fmt.Fprintf(&b, "  back's isolation: %s\n\n", strings.Join(acts, ", "))
	return b.String(), nil
}

// servedAgain waits until front's calls to back succeed 20 times in a row
// (the breaker closed again after its half-open trial).
func servedAgain(front string, limit time.Duration) error {
	ok := 0
	for deadline := time.Now().Add(limit); ok < 20; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("front not served by back again within %s", limit)
		}
		resp, err := client.Get(front)
		if err != nil {
			ok = 0
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(string(body), ": ok (") {
			ok++
		} else {
			ok = 0
		}
	}
	return nil
}

// load runs 4 clients on each of two URLs for d.
func load(front, other string, d time.Duration) (f, o *phaseFigures) {
	f, o = &phaseFigures{}, &phaseFigures{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for _, tgt := range []struct {
		url  string
		figs *phaseFigures
	}{{front, f}, {other, o}} {
		for range 4 {
			wg.Go(func() {
				for time.Now().Before(end) {
					start := time.Now()
					resp, err := client.Get(tgt.url)
					code, degraded := 0, false
					if err == nil {
						body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
						resp.Body.Close()
						code, degraded = resp.StatusCode, strings.Contains(string(body), "degraded")
					}
					took := time.Since(start)
					mu.Lock()
					tgt.figs.lat = append(tgt.figs.lat, took)
					if code != http.StatusOK {
						tgt.figs.failed++
					}
					if degraded {
						tgt.figs.degraded++
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return f, o
}
