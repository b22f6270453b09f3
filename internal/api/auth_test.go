package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tend-sh/tend/internal/access"
	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/store"
)

// TestTCPNeedsTokens drives the HTTPS listener's handler: every request needs
// a token, a read token only reads, and token management stays on the socket.
func TestTCPNeedsTokens(t *testing.T) {
	d := startDaemon(t)
	p := project()
	if _, err := d.client.Up(t.Context(), &p); err != nil {
		t.Fatal(err)
	}
	ro, err := d.client.CreateToken(t.Context(), api.TokenRequest{Name: "ro", Role: access.Read})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := d.client.CreateToken(t.Context(), api.TokenRequest{Role: access.Admin})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	d.srv.Registry = reg
	tcp := httptest.NewTLSServer(d.srv.TCPHandler())
	defer tcp.Close()

	tests := []struct {
		name, auth, method, path string
		status                   int
		kind                     string
	}{
		{"no token", "", "GET", "/v1/replicas", 401, "unauthenticated"},
		{"no token, unknown path", "", "GET", "/nothing", 401, "unauthenticated"},
		{"wrong token", "Bearer tend_wrong", "GET", "/v1/replicas", 401, "unauthenticated"},
		{"not bearer", "Basic " + ro.Secret, "GET", "/v1/replicas", 401, "unauthenticated"},
		{"read token reads", "Bearer " + ro.Secret, "GET", "/v1/replicas", 200, ""},
		{"read token reads the document", "Bearer " + ro.Secret, "GET", "/v1/openapi.yaml", 200, ""},
		{"read token on down", "Bearer " + ro.Secret, "DELETE", "/v1/projects/demo", 403, "forbidden"},
		{"read token on heal", "Bearer " + ro.Secret, "POST", "/v1/projects/demo/services/web/heal", 403, "forbidden"},
		{"read token on scale", "Bearer " + ro.Secret, "POST", "/v1/projects/demo/services/web/scale", 403, "forbidden"},
		{"admin lists tokens", "Bearer " + admin.Secret, "GET", "/v1/tokens", 403, "forbidden"},
		{"admin mints a token", "Bearer " + admin.Secret, "POST", "/v1/tokens", 403, "forbidden"},
		{"admin scales", "Bearer " + admin.Secret, "POST", "/v1/projects/demo/services/web/scale", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.method == "POST" {
				body = strings.NewReader(`{"replicas":2}`)
			}
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, tcp.URL+tt.path, body)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := tcp.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), `"kind":"`+tt.kind+`"`) && tt.kind != "" {
				t.Errorf("%s %s: %d %s, want %d %s", tt.method, tt.path, resp.StatusCode, b, tt.status, tt.kind)
			}
			if strings.Contains(string(b), ro.Secret) || strings.Contains(string(b), admin.Secret) {
				t.Errorf("the answer repeats a secret: %s", b)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	refused := map[string]float64{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			refused[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if refused["401"] != 4 || refused["403"] != 3 { // the socket-only routes refuse on their own
		t.Errorf("tend_api_refused_total %v, want 4 401s and 3 403s", refused)
	}
	// Nothing the read token tried was done.
	if recs, err := d.client.Projects(t.Context()); err != nil || len(recs) != 1 || recs[0].Deleting {
		t.Errorf("projects after the refused down: %+v, %v", recs, err)
	}
	for _, e := range d.events(t, store.Query{}) {
		if e.Action == "down" || e.Action == "quarantine" {
			t.Errorf("journal after refused actions: %+v", e)
		}
		if strings.Contains(e.Message, ro.Secret) || strings.Contains(e.Message, admin.Secret) {
			t.Errorf("journal holds a secret: %+v", e)
		}
	}
}

// TestProjectsRedactEnvironment: the API shows environment and build-arg
// names, never their values; the store keeps them for the replicas.
func TestProjectsRedactEnvironment(t *testing.T) {
	d := startDaemonLoop(t, false)
	p := project()
	p.Services[0].Environment = map[string]string{"DB_PASSWORD": "hunter2"}
	rec, err := d.client.Up(t.Context(), &p)
	if err != nil {
		t.Fatal(err)
	}
	_, body := d.request(t, "GET", "/v1/projects", "")
	if strings.Contains(body, "hunter2") || rec.Project.Services[0].Environment["DB_PASSWORD"] != api.Redacted ||
		!strings.Contains(body, `"DB_PASSWORD":"(redacted)"`) {
		t.Errorf("up answered %+v; projects %s", rec.Project.Services[0].Environment, body)
	}
	if stored, _ := d.st.Project("demo"); stored.Project.Services[0].Environment["DB_PASSWORD"] != "hunter2" {
		t.Errorf("stored environment %v", stored.Project.Services[0].Environment)
	}
}
