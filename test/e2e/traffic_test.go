package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// freePort is a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// load sends requests to url from workers until stop closes, and counts the answers.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errors     []string
	wg         sync.WaitGroup
	stop       chan struct{}
}

// client kinds of the availability test.
var (
	keepAlive = func() *http.Client { return &http.Client{Timeout: 2 * time.Second} }
	fresh     = func() *http.Client {
		return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	}
	h2c = func() *http.Client {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Protocols: &p}}
	}
)

func startLoad(url string, workers int) *load {
	return startLoadOf(url, "GET", keepAlive, workers)
}

// startLoadOf sends method requests from workers clients made by newClient.
func startLoadOf(url, method string, newClient func() *http.Client, workers int) *load {
	l := &load{stop: make(chan struct{})}
	for range workers {
		client := newClient()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest(method, url, nil)
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						l.ok.Add(1)
						continue
					}
					err = fmt.Errorf("HTTP %d", resp.StatusCode)
				}
				l.failed.Add(1)
				l.mu.Lock()
				if len(l.errors) < 10 {
					l.errors = append(l.errors, time.Now().Format("15:04:05.000 ")+err.Error())
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) finish() (ok, failed int64, errors []string) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.errors
}

// TestKilledReplicasUnderLoadFailNoRequest is the schedule of issue 13: a
// random running replica of three killed every 2 s for 12 s, four rounds 3 s
// apart on one daemon, under keep-alive, fresh-connection and HTTP/2
// clients; no idempotent request may fail, whether the port is declared
// HTTP or, as in almost every compose file, not. A request that may not be
// sent twice (a PUT, not marked idempotent) may fail only where it reached a
// replica killed under it: at most one per kill (one PUT client).
func TestKilledReplicasUnderLoadFailNoRequest(t *testing.T) {
	// Not parallel: alone on the host (harness_test.go, "Tests that load the host"), one case at a time.
	for _, c := range []struct{ name, port string }{
		{"plain", `["%d:8080"]`},
		{"declared", `[{target: 8080, published: "%d", host_ip: 127.0.0.1, app_protocol: http}]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			// One case at a time: side by side, 18 closed-loop clients of a -race binary and 6 replicas under kills on 2 cores left no replica ready, and the service was quarantined (2026-12-07 22:18 UTC); each alone failed no GET.
			d := startDaemon(t, "--debug") // a failure shows each failed attempt
			port := freePort(t)
			name, _ := d.up(fmt.Sprintf(`
services:
  web:
    image: tend-demo:dev
    ports: `+c.port+`
    healthcheck:
      test: ["CMD", "/demo", "-probe", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 1s
    deploy:
      replicas: 3
`, port))
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			loads := map[string]*load{
				"keep-alive GET": startLoadOf(url, "GET", keepAlive, 4),
				"fresh GET":      startLoadOf(url, "GET", fresh, 2),
				"HTTP/2 GET":     startLoadOf(url, "GET", h2c, 2),
				"PUT":            startLoadOf(url, "PUT", keepAlive, 1), // not idempotent unless x-tend says so
			}
			kills := 0
			for round := range 4 {
				if round > 0 {
					time.Sleep(3 * time.Second)
				}
				for range 6 {
					time.Sleep(2 * time.Second)
					if _, ok := killRandomRunning(t, name); ok {
						kills++
					} else {
						t.Logf("round %d: no replica running to kill", round+1)
					}
				}
			}
			time.Sleep(time.Second)
			for _, kind := range []string{"keep-alive GET", "fresh GET", "HTTP/2 GET", "PUT"} {
				ok, failed, errs := loads[kind].finish()
				t.Logf("%s: %d answered, %d failed %v", kind, ok, failed, errs)
				switch {
				case ok < 100:
					t.Errorf("%s: only %d answered", kind, ok)
				case kind == "PUT" && failed > int64(kills):
					t.Errorf("PUT: %d failed in %d kills, want at most one a kill (%v)", failed, kills, errs)
				case kind != "PUT" && failed > 0:
					t.Errorf("%s: %d failed (%v); want none while replicas were killed", kind, failed, errs)
				}
			}
			t.Logf("%d kills", kills)
		})
	}
}

func TestFailingReplicaIsEjected(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	port := freePort(t)
	name, _ := d.up(fmt.Sprintf(`
services:
  web:
    image: tend-demo:dev
    ports: ["127.0.0.1:%d:8080"]
    deploy:
      replicas: 3
    x-tend:
      readiness:
        http: {port: 8080, path: /health}
`, port))
	post(t, name+"-web-2", "/fail") // GET / answers 500; /health stays fine
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	// Counted from the failures, not from the first request: on a loaded
	// host the proxy may get web/2 into rotation a while after tend ps
	// shows it ready (make test, 2026-12-08 00:02 UTC: its 5 failures came
	// at requests 179-183 of 200).
	get := func() int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	ejected := func() bool {
		for _, e := range d.events(name) {
			if e.Action == "eject" && e.Reason == "outlier" && e.Slot == 2 && strings.Contains(e.Message, "500") {
				return true
			}
		}
		return false
	}
	failed := 0
	waitFor(t, 20*time.Second, "the ejection of web/2 in the journal", func() bool {
		for range 20 {
			if get() >= 500 {
				failed++
			}
		}
		return ejected()
	})
	before := failed
	for range 200 {
		if get() >= 500 {
			failed++
		}
	}
	// Ejected after 5 consecutive failures: callers see those 5 and no more.
	if failed > 5 || failed > before {
		t.Errorf("%d requests got a 5xx (%d after the ejection), want the 5 that eject it and none after", failed, failed-before)
	}
	out := d.mustTend("ps", "-p", name)
	if !strings.Contains(out, "ejected") {
		t.Errorf("tend ps does not show the ejected replica:\n%s", out)
	}
}

func TestDrainingFinishesTheRequestInFlight(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	port := freePort(t)
	compose := `
services:
  web:
    image: tend-demo:dev
    ports: ["127.0.0.1:%d:8080"]
    environment: {VERSION: "%d"}
    x-tend:
      readiness:
        http: {port: 8080, path: /health}
`
	name, file := d.up(fmt.Sprintf(compose, port, 1))
	post(t, name+"-web-1", "/slow?ms=2000")
	type answer struct {
		code int
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			got <- answer{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- answer{code: resp.StatusCode}
	}()
	time.Sleep(300 * time.Millisecond) // the request is in flight
	writeFile(t, file, fmt.Sprintf(compose, port, 2))
	d.mustTend("up", "-f", file, "-p", name) // a new spec: the replica is rolled, start-first
	a := <-got
	if a.err != nil || a.code != http.StatusOK {
		t.Errorf("the request in flight during the replacement: %d %v, want 200", a.code, a.err)
	}
	waitFor(t, 20*time.Second, "the replacement in the journal", func() bool {
		_, ok := findEvent(d.events(name), "web", "replace", "rollout")
		return ok
	})
}

func TestTCPModeAndMetrics(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	port := freePort(t)
	name, _ := d.up(fmt.Sprintf(`
services:
  db:
    image: tend-demo:dev
    ports: [{target: 8080, published: "%d", host_ip: 127.0.0.1, app_protocol: tcp}] # TCP forced
    deploy:
      replicas: 2
`, port))
	for range 10 {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET through the TCP proxy: %d", resp.StatusCode)
		}
	}
	// Replicas do not publish the port: tend does.
	if out := docker(t, "port", name+"-db-1"); out != "" {
		t.Errorf("replica publishes %q itself", out)
	}
	metrics := curlUnix(t, d.socket, "/metrics")
	if !strings.Contains(metrics, `tend_proxy_tcp_connections_total{`) || !strings.Contains(metrics, `project="`+name+`"`) {
		t.Errorf("/metrics lacks the TCP proxy's connections:\n%.2000s", metrics)
	}
}

// curlUnix GETs path from the daemon's API socket.
func curlUnix(t *testing.T, socket, path string) string {
	t.Helper()
	c := http.Client{Transport: &http.Transport{Dial: func(_, _ string) (net.Conn, error) { return net.Dial("unix", socket) }}}
	resp, err := c.Get("http://tend" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestInStackCallsGoThroughTheProxyByName(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	name, _ := d.up(fmt.Sprintf(`
services:
  api:
    image: tend-demo:dev
    ports:
      - {target: 8080, published: "%d", host_ip: 127.0.0.1, app_protocol: http}
  web:
    image: tend-demo:dev
    ports:
      - {target: 8080, published: "%d", host_ip: 127.0.0.1, app_protocol: http}
  client:
    image: tend-demo:dev
    depends_on: [api, web]
`, freePort(t), freePort(t)))
	client := name + "-client-1"
	post(t, name+"-api-1", "/sick") // api's /health answers 503, web's 200
	call := func(url string) (string, error) {
		out, err := exec.Command("docker", "exec", client, "/demo", "-probe", url).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := call("http://web:8080/health"); err != nil || !strings.Contains(out, "200") {
		t.Errorf("client -> web:8080/health: %q %v, want 200", out, err)
	}
	if out, _ := call("http://api:8080/health"); !strings.Contains(out, "503") {
		t.Errorf("client -> api:8080/health: %q, want api's 503 (the Host header picks the service)", out)
	}
	// Nothing else sent requests: these are the client's, through tend.
	metrics := curlUnix(t, d.socket, "/metrics")
	for svc, code := range map[string]string{"api": "503", "web": "200"} {
		found := false
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "tend_proxy_requests_total{") && strings.Contains(l, `service="`+svc+`"`) && strings.Contains(l, `code="`+code+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("/metrics has no %s request of %s: the in-stack call did not go through tend\n%.3000s", code, svc, metrics)
		}
	}
}

// TestIdempotentMethodsAreRetried: a PUT that a replica answers with 503
// goes to the other replica when x-tend marks PUT idempotent, and reaches
// the client otherwise (a PUT is not retried by default).
func TestIdempotentMethodsAreRetried(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	marked, plain := freePort(t), freePort(t)
	name, _ := d.up(fmt.Sprintf(`
services:
  marked:
    image: tend-demo:dev
    ports: [{target: 8080, published: "%d", host_ip: 127.0.0.1, app_protocol: http}]
    deploy: {replicas: 2}
    x-tend:
      idempotent: [PUT]
  plain:
    image: tend-demo:dev
    ports: [{target: 8080, published: "%d", host_ip: 127.0.0.1, app_protocol: http}]
    deploy: {replicas: 2}
`, marked, plain))
	post(t, name+"-marked-1", "/fail?code=503")
	post(t, name+"-plain-1", "/fail?code=503")
	unavailable := func(port int) (n int) {
		for range 40 {
			req, _ := http.NewRequest("PUT", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				n++
			}
		}
		return n
	}
	if n := unavailable(marked); n != 0 {
		t.Errorf("%d of 40 PUTs got the failing replica's 503 although x-tend marks PUT idempotent", n)
	}
	if n := unavailable(plain); n == 0 {
		t.Errorf("no PUT to the unmarked service got the failing replica's 503: was it retried?")
	}
}
