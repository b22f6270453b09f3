package e2e

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freeAddr is a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newToken runs tend token create and returns the token: stdout's last line, alone.
func (d *daemon) newToken(role, name string) string {
	d.t.Helper()
	out := d.mustTend("token", "create", "--role", role, "--name", name)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	tok := lines[len(lines)-1]
	if !strings.HasPrefix(tok, "tend_") || strings.ContainsAny(tok, " \t") {
		d.t.Fatalf("tend token create: last line %q is not a token alone\n%s", tok, out)
	}
	return tok
}

// pinnedClient trusts only the certificate tend made in its data directory.
func pinnedClient(t *testing.T, certFile string) (*http.Client, string) {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", certFile)
	}
	blk, _ := pem.Decode(b)
	sum := sha256.Sum256(blk.Bytes)
	fp := make([]string, len(sum))
	for i, c := range sum {
		fp[i] = fmt.Sprintf("%02X", c)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
		strings.Join(fp, ":")
}

func postJSON(t *testing.T, c *http.Client, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func call(t *testing.T, c *http.Client, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHTTPSNeedsTokens is issue 17's access story on the real daemon: over
// TCP nothing without a token, a read token reads but cannot take a project
// down (and nothing changes), an admin token acts; no secret reaches the log,
// the journal or any answer.
func TestHTTPSNeedsTokens(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	d := startDaemon(t, "--listen", addr)
	name, _ := d.up(`
services:
  web:
    image: tend-demo:dev
`)
	ro := d.newToken("read", "viewer")
	admin := d.newToken("admin", "ops")
	c, fingerprint := pinnedClient(t, filepath.Join(d.data, "tls", "cert.pem"))
	base := "https://" + addr

	if code, body := call(t, c, "GET", base+"/v1/replicas", ""); code != 401 || !strings.Contains(body, `"kind":"unauthenticated"`) {
		t.Errorf("no token: %d %s, want 401", code, body)
	}
	if code, body := call(t, c, "GET", base+"/v1/replicas", ro+"x"); code != 401 {
		t.Errorf("wrong token: %d %s, want 401", code, body)
	}
	if code, body := call(t, c, "GET", base+"/v1/replicas?project="+name, ro); code != 200 || !strings.Contains(body, `"container":"`+name+`-web-1"`) {
		t.Errorf("read token on GET /v1/replicas: %d %s", code, body)
	}
	if code, body := call(t, c, "DELETE", base+"/v1/projects/"+name, ro); code != 403 || !strings.Contains(body, `"kind":"forbidden"`) {
		t.Errorf("read token on DELETE: %d %s, want 403", code, body)
	}
	if code, body := call(t, c, "POST", base+"/v1/tokens", admin); code != 403 {
		t.Errorf("admin token minting a token over TCP: %d %s, want 403", code, body)
	}
	// The refused down changed nothing: the project is kept and its replica runs.
	if out := d.mustTend("ps", "-p", name); !strings.Contains(out, name+"-web-1") {
		t.Errorf("after the refused down, tend ps:\n%s", out)
	}
	if got := projectContainers(t, name, "-q", "--filter", "status=running"); len(strings.Fields(got)) != 1 {
		t.Errorf("running containers after the refused down: %q", got)
	}
	if _, ok := findEvent(d.events(name), "", "down", ""); ok {
		t.Error("the refused down was journaled as a down")
	}
	if code, body := postJSON(t, c, base+"/v1/projects/"+name+"/services/web/scale", ro, `{"replicas":3}`); code != 403 {
		t.Errorf("read token on scale: %d %s, want 403", code, body)
	}
	if reps := d.ps(name); len(reps) != 1 {
		t.Errorf("after the refused scale: %d replicas, want 1", len(reps))
	}

	// The journal live over HTTPS with a read token: a replica killed from outside shows up restarted.
	req, _ := http.NewRequest("GET", base+"/v1/events?follow=1&project="+name+"&action=restart", nil)
	req.Header.Set("Authorization", "Bearer "+ro)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := (&http.Client{Transport: c.Transport}).Do(req) // no client timeout: a stream

	if err != nil || stream.StatusCode != 200 || stream.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream: %v %v", err, stream)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	docker(t, "kill", name+"-web-1")
	deadline := time.After(60 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the event stream ended")
			}
			if strings.HasPrefix(l, "data: ") && strings.Contains(l, `"action":"restart"`) && strings.Contains(l, `"service":"web","slot":1`) {
				break wait
			}
		case <-deadline:
			t.Fatal("no restart on the event stream within 60s of the kill")
		}
	}
	stream.Body.Close()

	// Plain HTTP on the TCP port is never the API.
	plain := &http.Client{Timeout: 10 * time.Second}
	if code, body := call(t, plain, "GET", "http://"+addr+"/v1/replicas", admin); code == 200 {
		t.Errorf("plain HTTP answered: %d %s", code, body)
	}

	if code, body := call(t, c, "DELETE", base+"/v1/projects/"+name, admin); code != 204 {
		t.Fatalf("admin token on DELETE: %d %s, want 204", code, body)
	}
	if got := projectContainers(t, name, "-aq"); got != "" {
		t.Errorf("containers after the admin's down: %q", got)
	}

	// Secrets: not in the journal, not in token ls, not in the tokens file, not in the log.
	journal := d.mustTend("events", "--json", "-n", "0")
	listed := d.mustTend("token", "ls", "--json")
	file, _ := os.ReadFile(filepath.Join(d.data, "tokens.json"))
	if !strings.Contains(listed, `"viewer"`) || !strings.Contains(journal, "token-create") {
		t.Errorf("token ls %s\njournal %s", listed, journal)
	}
	if m := d.socketGet("/metrics"); !strings.Contains(m, `tend_api_refused_total{code="401"} 2`) || !strings.Contains(m, `tend_api_refused_total{code="403"} 2`) {
		t.Errorf("refused requests in /metrics:\n%s", m)
	}
	d.stop()
	for what, text := range map[string]string{"journal": journal, "token ls": listed, "tokens file": string(file), "daemon log": d.log.String()} {
		for _, secret := range []string{ro, admin} {
			if strings.Contains(text, secret) || strings.Contains(text, secret[5:25]) {
				t.Errorf("the %s holds a secret:\n%s", what, text)
			}
		}
	}
	if log := d.log.String(); !strings.Contains(log, "sha256_fingerprint="+fingerprint) || !strings.Contains(log, "made now") {
		t.Errorf("the log does not print the certificate's fingerprint %s:\n%s", fingerprint, log)
	}
	// Made once: a restarted daemon serves the same certificate, and the tokens still hold.
	d.start()
	if code, body := call(t, c, "GET", base+"/v1/version", ro); code != 200 {
		t.Errorf("after a restart, read token: %d %s", code, body)
	}
	d.mustTend("token", "rm", "viewer")
	if code, _ := call(t, c, "GET", base+"/v1/version", ro); code != 401 {
		t.Errorf("a removed token: %d, want 401", code)
	}
}
