package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestRunContainer checks the create request (name, exec-form health check in
// nanoseconds, restart policy, network) and the start that follows, against a fake
// engine on a unix socket.
func TestRunContainer(t *testing.T) {
	var calls []string
	var body map[string]any
	d := fakeEngine(t, func(w http.ResponseWriter, r *http.Request) {
		calls = append(calls, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		switch r.URL.Path {
		case "/containers/create":
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintln(w, `{"Id":"c0ffee","Warnings":[]}`)
		case "/containers/c0ffee/start":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	})
	id, err := d.RunContainer(context.Background(), ContainerSpec{
		Name: "web", Image: "demo:dev", Network: "net", Restart: "always",
		Labels: map[string]string{"k": "v"},
		Health: &Healthcheck{Test: []string{"CMD", "/demo", "-probe", "u"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 3},
	})
	if err != nil || id != "c0ffee" {
		t.Fatalf("RunContainer = %q, %v", id, err)
	}
	if len(calls) != 2 || calls[0] != "POST /containers/create?name=web" || calls[1] != "POST /containers/c0ffee/start?" {
		t.Errorf("calls = %q", calls)
	}
	got, _ := json.Marshal(body)
	want := `{"Healthcheck":{"Interval":1000000000,"Retries":3,"Test":["CMD","/demo","-probe","u"],"Timeout":2000000000},` +
		`"HostConfig":{"NetworkMode":"net","RestartPolicy":{"Name":"always"}},"Image":"demo:dev","Labels":{"k":"v"}}`
	if string(got) != want {
		t.Errorf("create body\n got %s\nwant %s", got, want)
	}
}
