package api_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/store"
)

// TestEventsStreamLive follows the journal as server-sent events: an entry
// appended after the stream began arrives, and a reconnect with Last-Event-ID
// resumes after the last one seen.
func TestEventsStreamLive(t *testing.T) {
	d := startDaemonLoop(t, false)
	if _, err := d.st.Append(store.Entry{Time: time.Now(), Project: "demo", Service: "web", Action: "restart", Reason: "exited"}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://tend/v1/events?follow=1&service=web", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := d.raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-t.Context().Done():
				return
			}
		}
		close(lines)
	}()
	next := func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended waiting for %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-time.After(waitFor):
				t.Fatalf("no %q on the stream", want)
			}
		}
	}
	next(`"reason":"exited"`)
	// Another service's entry is filtered out; this service's next one arrives live.
	if _, err := d.st.Append(store.Entry{Time: time.Now(), Project: "demo", Service: "api", Action: "restart", Reason: "other"},
		store.Entry{Time: time.Now(), Project: "demo", Service: "web", Action: "replace", Reason: "unhealthy"}); err != nil {
		t.Fatal(err)
	}
	next("id: 3")
	next(`"reason":"unhealthy"`)

	resp2, body := d.requestWith(t, "GET", "/v1/events", "Accept", "text/event-stream", "Last-Event-ID", "2")
	if resp2.StatusCode != 200 || strings.Count(body, "event: entry") != 1 || !strings.Contains(body, `"seq":3`) {
		t.Errorf("resumed after 2: %s\n%s", resp2.Status, body)
	}
}

// requestWith sends a GET with headers (name, value, ...) and returns the status and body.
func (d *daemon) requestWith(t *testing.T, method, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, "http://tend"+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := d.raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp, b.String()
}

// TestFollowersAreBounded: at most 64 streams follow at once; one more is
// told to come back later, and a slot freed is taken again.
func TestFollowersAreBounded(t *testing.T) {
	d := startDaemonLoop(t, false)
	var bodies []io.Closer
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	open := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://tend/v1/events?follow=1", nil)
		resp, err := d.raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for range 64 {
		resp := open()
		if resp.StatusCode != 200 {
			t.Fatalf("stream %d: %s", len(bodies)+1, resp.Status)
		}
		bodies = append(bodies, resp.Body)
	}
	resp := open()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "too many event streams") {
		t.Errorf("the 65th stream: %s %s", resp.Status, b)
	}
	bodies[0].Close()
	bodies = bodies[1:]
	eventually(t, "a freed slot taken again", func() bool {
		resp := open()
		if resp.StatusCode != 200 {
			resp.Body.Close()
			return false
		}
		bodies = append(bodies, resp.Body)
		return true
	})
}

// TestQuietStreamStaysOpen: the write deadline is for a client that does not
// read, not for a journal with nothing to say: a JSON-lines follower quiet for
// longer than it still gets the next entry.
func TestQuietStreamStaysOpen(t *testing.T) {
	api.SetWriteTimeout(t, 100*time.Millisecond)
	d := startDaemonLoop(t, false)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://tend/v1/events?follow=1", nil)
	resp, err := d.raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(400 * time.Millisecond) // quiet for four write timeouts
	if _, err := d.st.Append(store.Entry{Time: time.Now(), Project: "demo", Action: "restart"}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Scan()
		got <- sc.Text()
	}()
	select {
	case l := <-got:
		if !strings.Contains(l, `"action":"restart"`) {
			t.Errorf("after a quiet spell the stream said %q", l)
		}
	case <-time.After(waitFor):
		t.Fatal("nothing on the stream")
	}
}
