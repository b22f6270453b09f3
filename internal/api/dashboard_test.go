package api_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/access"
	"github.com/tend-sh/tend/internal/api"
)

// TestDashboardIsServedWithoutAToken: the page and its assets are public
// (they hold no data), everything else on TCP still needs a token, and
// whoami tells the page which role its token has.
func TestDashboardIsServedWithoutAToken(t *testing.T) {
	d := startDaemon(t)
	ro, err := d.client.CreateToken(t.Context(), api.TokenRequest{Name: "viewer", Role: access.Read})
	if err != nil {
		t.Fatal(err)
	}
	tcp := httptest.NewTLSServer(d.srv.TCPHandler())
	defer tcp.Close()
	get := func(method, path, token string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, tcp.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := tcp.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, tt := range []struct {
		method, path, token string
		status              int
		ctype, has          string
	}{
		{"GET", "/", "", 200, "text/html", `src="/ui/app.js"`},
		{"GET", "/ui/app.js", "", 200, "javascript", "/v1/whoami"},
		{"GET", "/ui/style.css", "", 200, "text/css", "#journal"},
		{"GET", "/ui/missing.js", "", 404, "", ""},
		{"POST", "/", "", 401, "application/json", "unauthenticated"},
		{"GET", "/v1/whoami", "", 401, "application/json", "unauthenticated"},
		{"GET", "/v1/whoami", ro.Secret, 200, "application/json", `{"role":"read","name":"viewer"}`},
	} {
		resp, body := get(tt.method, tt.path, tt.token)
		if resp.StatusCode != tt.status || !strings.Contains(resp.Header.Get("Content-Type"), tt.ctype) || !strings.Contains(body, tt.has) {
			t.Errorf("%s %s: %d %s %.200q, want %d %s with %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status, tt.ctype, tt.has)
		}
		if tt.status == 200 && !strings.HasPrefix(tt.path, "/v1") && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s: no CSP: %q", tt.path, resp.Header.Get("Content-Security-Policy"))
		}
	}
	// The socket needs no token and acts as admin.
	resp, err := d.raw.Get("http://tend/v1/whoami")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != `{"role":"admin","name":""}` {
		t.Errorf("whoami on the socket: %s", b)
	}
}

// TestDashboardFetchesNothingFromOutside: no asset names another origin.
func TestDashboardFetchesNothingFromOutside(t *testing.T) {
	outside := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(`)
	err := fs.WalkDir(api.DashboardFiles, ".", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(api.DashboardFiles, path)
		if m := outside.Find(b); m != nil {
			t.Errorf("%s refers to %q", path, m)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
