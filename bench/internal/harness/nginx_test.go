package harness

import (
	"reflect"
	"strings"
	"testing"
)

// TestNginxConfigFailsOver checks the lines that make nginx the peer a user would deploy.
func TestNginxConfigFailsOver(t *testing.T) {
	c := NginxConfig{Listen: "127.0.0.1:18311", ListenH2C: "127.0.0.1:18312", Workers: "2",
		Upstreams: []string{"172.20.0.2:8080", "172.20.0.3:8080"}}
	conf := c.render("/tmp/x")
	for _, want := range []string{
		"server 172.20.0.2:8080 max_fails=1 fail_timeout=1s;\n",
		"server 172.20.0.3:8080 max_fails=1 fail_timeout=1s;\n",
		"keepalive 64;",
		"listen 127.0.0.1:18311;\n",
		"listen 127.0.0.1:18312 http2;\n",
		"proxy_next_upstream error timeout http_502 http_503;",
		"proxy_connect_timeout 250ms;",
		"proxy_http_version 1.1;",
		`proxy_set_header Connection "";`,
		"pid /tmp/x/nginx.pid;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "non_idempotent") {
		t.Error("a POST that reached a replica must not be passed on")
	}
	c.ListenH2C = ""
	if strings.Contains(c.render("/tmp/x"), "http2") {
		t.Error("no h2c listener asked for")
	}
}

func TestSameSet(t *testing.T) {
	if !SameSet([]string{"b", "a"}, []string{"a", "b"}) || SameSet([]string{"a"}, []string{"a", "b"}) {
		t.Error("SameSet")
	}
}

func TestNginxErrors(t *testing.T) {
	log := `2026/11/27 00:20:01 [error] 1234#1234: *5 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://172.20.0.2:8080/", host: "127.0.0.1:18090"
2026/11/27 00:20:01 [warn] 1234#1234: *5 upstream server temporarily disabled while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1"
2026/11/27 00:20:02 [error] 1235#1235: *9 no live upstreams while connecting to upstream, client: 127.0.0.1
2026/11/27 00:20:02 [error] 1235#1235: *10 no live upstreams while connecting to upstream, client: 127.0.0.1
`
	got := NginxErrors(log)
	want := map[string]int{
		"error: connect() failed (111: Connection refused)": 1,
		"warn: upstream server temporarily disabled":        1,
		"error: no live upstreams":                          2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NginxErrors = %v, want %v", got, want)
	}
}
