package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUndeclaredPortsServeEveryProtocol: ports published in the short
// syntax, as almost every compose file writes them, serve an HTTP service in
// HTTP mode (tend's retries, metrics by status) and a server-first one (it
// greets its clients, as SMTP or MySQL do) in TCP mode, with the greeting as
// quick as straight from the replica; `tend ps` says which mode each runs in.
func TestUndeclaredPortsServeEveryProtocol(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	webPort, mailPort := freePort(t), freePort(t)
	name, _ := d.up(fmt.Sprintf(`
services:
  web:
    image: tend-demo:dev
    ports: ["127.0.0.1:%d:8080"]
  mail:
    image: tend-demo:dev
    command: ["-greet", ":2525", "-name", "mail"]
    ports: ["127.0.0.1:%d:2525"]
`, webPort, mailPort))
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", webPort))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET through the undeclared port: %d", resp.StatusCode)
	}
	greeting := func(addr string) (time.Duration, error) {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n') // the client says nothing first
		took := time.Since(start)
		if err != nil || line != "220 mail ready\r\n" {
			return 0, fmt.Errorf("greeting %q: %v", line, err)
		}
		fmt.Fprintf(c, "HELO e2e\r\n")
		if line, err = br.ReadString('\n'); err != nil || line != "mail: HELO e2e\r\n" {
			return 0, fmt.Errorf("answer %q: %v", line, err)
		}
		return took, nil
	}
	direct := strings.Fields(containerIP(t, name+"-mail-1"))[0] + ":2525"
	var via, straight []time.Duration
	for range 15 {
		a, err := greeting(fmt.Sprintf("127.0.0.1:%d", mailPort))
		if err != nil {
			t.Fatalf("through tend: %v", err)
		}
		b, err := greeting(direct)
		if err != nil {
			t.Fatalf("straight to the replica: %v", err)
		}
		via, straight = append(via, a), append(straight, b)
	}
	slices.Sort(via)
	slices.Sort(straight)
	t.Logf("time to the greeting, median of 15: %s through tend, %s straight to the replica", via[7], straight[7])
	out := d.mustTend("ps", "-p", name)
	for svc, mode := range map[string]string{"web": "http (detected; 1 connections)", "mail": "tcp (detected; 15 connections)"} {
		found := false
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, " "+svc+" ") && strings.Contains(l, mode) {
				found = true
			}
		}
		if !found {
			t.Errorf("tend ps does not show %s's port as %q:\n%s", svc, mode, out)
		}
	}
	metrics := curlUnix(t, d.socket, "/metrics")
	if !strings.Contains(metrics, `code="200",project="`+name+`",replica="web/1",service="web"`) {
		t.Errorf("/metrics has no 200 of web: its port was not served in HTTP mode\n%.3000s", metrics)
	}
}
