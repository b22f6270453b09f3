package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wsConn is a minimal WebSocket client for the demo's echo.
type wsConn struct {
	c  net.Conn
	br *bufio.Reader
}

func wsDial(t *testing.T, addr string) *wsConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var k [16]byte
	rand.Read(k[:])
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		addr, base64.StdEncoding.EncodeToString(k[:]))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("WebSocket handshake through %s: %v %v", addr, resp, err)
	}
	return &wsConn{c: c, br: br}
}

// echo sends one masked text frame and reads the answer.
func (w *wsConn) echo(msg string) (string, error) {
	w.c.SetDeadline(time.Now().Add(5 * time.Second))
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(msg))}
	frame = append(frame, mask[:]...)
	for i := range len(msg) {
		frame = append(frame, msg[i]^mask[i%4])
	}
	if _, err := w.c.Write(frame); err != nil {
		return "", err
	}
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return "", err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return "", err
		}
		n = int(b[0])<<8 | int(b[1])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(w.br, p); err != nil {
		return "", err
	}
	return string(p), nil
}

func TestWebSocketSurvivesTheOtherReplicasDying(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	port := freePort(t)
	name, _ := d.up(fmt.Sprintf(`
services:
  chat:
    image: tend-demo:dev
    ports:
      - {target: 8080, published: "%d", host_ip: 127.0.0.1, app_protocol: http}
    deploy:
      replicas: 2
`, port))
	ws := wsDial(t, fmt.Sprintf("127.0.0.1:%d", port))
	first, err := ws.echo("hello")
	if err != nil || !strings.HasSuffix(first, ": hello") {
		t.Fatalf("echo through tend: %q %v", first, err)
	}
	holder, _, _ := strings.Cut(first, ":") // the hostname of the replica holding the connection
	other := ""
	for _, c := range []string{name + "-chat-1", name + "-chat-2"} {
		if !strings.HasPrefix(containerID(t, c), holder) {
			other = c
		}
	}
	if other == "" {
		t.Fatalf("no replica other than %s", holder)
	}
	docker(t, "kill", other)
	waitFor(t, 15*time.Second, other+" restarted", func() bool {
		r, _ := byName(d.ps(name), other)
		return r.State == "running" && r.Ready
	})
	for i := range 3 {
		msg := fmt.Sprintf("still here %d", i)
		if got, err := ws.echo(msg); err != nil || got != holder+": "+msg {
			t.Fatalf("after %s was killed and restarted: %q %v, want the same connection to answer", other, got, err)
		}
	}
}
