package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/api"
)

func TestScaleRequests(t *testing.T) {
	d := startDaemon(t)
	if _, err := d.client.Up(context.Background(), ptr(project())); err != nil {
		t.Fatal(err)
	}
	svc := project().Services[0].Name
	path := "/v1/projects/demo/services/" + svc + "/scale"
	for _, tt := range []struct {
		name, path, body string
		status           int
		message          string
	}{
		{"both", path, `{"replicas": 2, "auto": true}`, 400, "want either replicas or auto"},
		{"neither", path, `{}`, 400, "want either replicas or auto"},
		{"negative", path, `{"replicas": -1}`, 400, "replicas must be 0 or more"},
		{"unknown field", path, `{"replica": 2}`, 400, "unknown field"},
		{"unknown service", "/v1/projects/demo/services/nope/scale", `{"replicas": 2}`, 404, `has no service`},
		{"unknown project", "/v1/projects/nope/services/web/scale", `{"replicas": 2}`, 404, `not found`},
	} {
		resp, body := d.request(t, http.MethodPost, tt.path, tt.body)
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.message) {
			t.Errorf("%s: %d %s, want %d %q", tt.name, resp.StatusCode, body, tt.status, tt.message)
		}
	}
	n := 3
	st, err := d.client.Scale(context.Background(), "demo", svc, api.ScaleRequest{Replicas: &n})
	if err != nil || !st.Pinned || st.Desired != 3 {
		t.Fatalf("pin: %v %+v", err, st)
	}
	sts, err := d.client.ScaleStatus(context.Background(), "demo")
	if err != nil || len(sts) == 0 || sts[0].Desired != 3 {
		t.Fatalf("status: %v %+v", err, sts)
	}
	if st, err = d.client.Scale(context.Background(), "demo", svc, api.ScaleRequest{Auto: true}); err != nil || st.Pinned {
		t.Fatalf("auto: %v %+v", err, st)
	}
}

func ptr[T any](v T) *T { return &v }
