package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestEvents checks the subscription's query (since, filters) and the stream's decoding
// against a fake engine on a unix socket.
func TestEvents(t *testing.T) {
	gotQuery := make(chan map[string]string, 1)
	release := make(chan struct{})
	d := fakeEngine(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			http.NotFound(w, r)
			return
		}
		gotQuery <- map[string]string{"since": r.URL.Query().Get("since"), "filters": r.URL.Query().Get("filters")}
		w.Header().Set("Content-Type", "application/json")
		w.(http.Flusher).Flush()
		fmt.Fprintln(w, `{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"io.tend.bench.peer":"always"}},"timeNano":1700000000123456789}`)
		w.(http.Flusher).Flush()
		<-release // a stream stays open until the client goes
	})
	t.Cleanup(func() { close(release) }) // before the server closes: cleanups run last first

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	since := time.Unix(1700000000, 5)
	s, err := d.Events(ctx, since, map[string][]string{"type": {"container"}, "label": {"a=b", "c=d"}})
	if err != nil {
		t.Fatal(err)
	}
	q := <-gotQuery
	if q["since"] != "1700000000.000000005" {
		t.Errorf("since = %q, want 1700000000.000000005", q["since"])
	}
	var f map[string][]string
	if err := json.Unmarshal([]byte(q["filters"]), &f); err != nil || len(f["label"]) != 2 || f["type"][0] != "container" {
		t.Errorf("filters = %q (%v)", q["filters"], err)
	}
	select {
	case e := <-s.C:
		if e.Action != "start" || e.Actor.ID != "abc" || e.Actor.Attributes["io.tend.bench.peer"] != "always" ||
			e.Time().UnixNano() != 1700000000123456789 || e.Received.IsZero() {
			t.Errorf("event = %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	cancel()
	select {
	case _, ok := <-s.C:
		if ok {
			t.Fatal("unexpected second event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream not closed after cancel")
	}
	if s.Err() == nil {
		t.Error("Err() = nil after the stream ended")
	}
}

// fakeEngine serves h on a unix socket for the rest of the test and returns a client of it.
func fakeEngine(t *testing.T, h http.HandlerFunc) *Docker {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	return NewDocker()
}
