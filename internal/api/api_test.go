package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/store"
)

func TestRoundTrip(t *testing.T) {
	d := startDaemon(t)
	ctx := t.Context()
	p := project()

	rec, err := d.client.Up(ctx, &p)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != 1 || rec.Project.Name != "demo" || len(rec.Project.Services) != 2 {
		t.Errorf("up answered %+v, want version 1 of demo", rec)
	}
	eventually(t, "3 ready replicas", func() bool {
		reps, err := d.client.Replicas(ctx, "demo")
		if err != nil || len(reps) != 3 {
			return false
		}
		for _, r := range reps {
			if !r.Ready || r.State != string(runtime.Running) {
				return false
			}
		}
		return true
	})
	reps, err := d.client.Replicas(ctx, "")
	if err != nil || len(reps) != 3 || reps[0].Service != "api" || reps[2].Container != "demo-web-2" {
		t.Errorf("all replicas: %+v, %v", reps, err)
	}
	recs, err := d.client.Projects(ctx)
	if err != nil || len(recs) != 1 || recs[0].Version != 1 {
		t.Errorf("projects: %+v, %v", recs, err)
	}

	// A create is journaled once its container started: wait for the entries too.
	var es []store.Entry
	eventually(t, "3 creates journaled", func() bool {
		es = d.events(t, store.Query{Project: "demo"})
		return countOf(actions(es), "create") == 3
	})
	if got := actions(es); len(got) != 4 || got[0] != "up" || countOf(got, "create") != 3 {
		t.Errorf("events %q, want up then 3 creates", got)
	}
	if last := d.events(t, store.Query{Limit: 1}); len(last) != 1 || last[0].Seq != es[len(es)-1].Seq {
		t.Errorf("events with limit 1: %+v, want the newest", last)
	}
	if after := d.events(t, store.Query{After: es[1].Seq}); len(after) != 2 {
		t.Errorf("events after %d: %+v, want 2", es[1].Seq, after)
	}

	if err := d.client.Down(ctx, "demo", false); err != nil {
		t.Fatalf("down: %v", err)
	}
	if cs, _ := d.rt.List(ctx, "demo"); len(cs) != 0 {
		t.Errorf("containers after down: %+v", cs)
	}
	if recs, err := d.client.Projects(ctx); err != nil || len(recs) != 0 {
		t.Errorf("projects after down: %+v, %v", recs, err)
	}
	if _, body := d.request(t, http.MethodGet, "/v1/projects", ""); body != "[]\n" {
		t.Errorf("no projects as JSON: %q, want []", body)
	}
	if _, err := d.client.Replicas(ctx, "demo"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("replicas of a project taken down: err = %v, want not-found", err)
	}
	if err := d.client.Down(ctx, "demo", false); errs.KindOf(err) != errs.NotFound {
		t.Errorf("second down: err = %v, want not-found", err)
	}
	if got := actions(d.events(t, store.Query{After: es[len(es)-1].Seq})); !slices.Equal(got, []string{"down"}) {
		t.Errorf("events after the creates: %q, want [down]", got)
	}
	if resp, body := d.request(t, http.MethodGet, "/v1/version", ""); resp.StatusCode != http.StatusOK || body != "{\"version\":\"test\"}\n" {
		t.Errorf("version: %d %q", resp.StatusCode, body)
	}
}

func TestBadRequests(t *testing.T) {
	d := startDaemon(t)
	valid := projectJSON(t, project())
	other := project()
	other.Name = "other"
	noImage := project()
	noImage.Services[0].Image = ""

	tests := []struct {
		name         string
		method, path string
		body         string
		status       int
		message      string // part of the error
	}{
		{name: "bad JSON", method: http.MethodPut, path: "/v1/projects/demo", body: `{"name": "demo",`,
			status: 400, message: "request body is not a project"},
		{name: "not an object", method: http.MethodPut, path: "/v1/projects/demo", body: `[1, 2]`,
			status: 400, message: "request body is not a project"},
		{name: "empty body", method: http.MethodPut, path: "/v1/projects/demo",
			status: 400, message: "request body is not a project"},
		{name: "unknown field", method: http.MethodPut, path: "/v1/projects/demo", body: `{"name": "demo", "servces": []}`,
			status: 400, message: `unknown field "servces"`},
		{name: "name mismatch", method: http.MethodPut, path: "/v1/projects/other", body: valid,
			status: 400, message: `project name "demo" in the body differs from "other" in the path`},
		{name: "name mismatch the other way", method: http.MethodPut, path: "/v1/projects/demo", body: projectJSON(t, other),
			status: 400, message: "differs"},
		{name: "invalid project", method: http.MethodPut, path: "/v1/projects/demo", body: projectJSON(t, noImage),
			status: 400, message: "image"},
		{name: "unknown project down", method: http.MethodDelete, path: "/v1/projects/nope",
			status: 404, message: `project "nope" not found`},
		{name: "unknown project replicas", method: http.MethodGet, path: "/v1/replicas?project=nope",
			status: 404, message: `project "nope" not found`},
		{name: "after not a number", method: http.MethodGet, path: "/v1/events?after=x",
			status: 400, message: `query parameter after="x" is not a whole number`},
		{name: "negative limit", method: http.MethodGet, path: "/v1/events?limit=-1",
			status: 400, message: `query parameter limit="-1"`},
		{name: "follow not a boolean", method: http.MethodGet, path: "/v1/events?follow=maybe",
			status: 400, message: `query parameter follow="maybe" is not a boolean`},
		{name: "volumes not a boolean", method: http.MethodDelete, path: "/v1/projects/demo?volumes=perhaps",
			status: 400, message: `query parameter volumes="perhaps" is not a boolean`},
		{name: "unknown endpoint", method: http.MethodGet, path: "/v1/nope",
			status: 404, message: "no such endpoint: GET /v1/nope"},
		{name: "wrong method", method: http.MethodPost, path: "/v1/projects",
			status: 404, message: "no such endpoint: POST /v1/projects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := d.request(t, tt.method, tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q, want application/json", ct)
			}
			var eb struct {
				Error string    `json:"error"`
				Kind  errs.Kind `json:"kind"`
			}
			if err := json.Unmarshal([]byte(body), &eb); err != nil {
				t.Fatalf("error body %q is not JSON: %v", body, err)
			}
			if !strings.Contains(eb.Error, tt.message) {
				t.Errorf("error %q, want it to contain %q", eb.Error, tt.message)
			}
			if eb.Kind == "" || eb.Kind == errs.Internal {
				t.Errorf("error kind %q, want the kind the status was mapped from", eb.Kind)
			}
		})
	}
	if recs, _ := d.st.Projects(); len(recs) != 0 {
		t.Errorf("bad requests stored projects: %+v", recs)
	}
}

// The client turns error answers back into errors of their kind.
func TestClientErrorKinds(t *testing.T) {
	d := startDaemonLoop(t, false) // no loop: a project marked deleting stays so
	ctx := t.Context()
	p := project()
	p.Services[0].Image = ""
	if _, err := d.client.Up(ctx, &p); errs.KindOf(err) != errs.Invalid || !strings.Contains(err.Error(), "image") {
		t.Errorf("up of an invalid project: err = %v, want invalid naming the image", err)
	}
	p = project()
	if _, err := d.client.Up(ctx, &p); err != nil {
		t.Fatal(err)
	}
	if err := d.st.MarkDeleting("demo", false); err != nil { // as a down under way would
		t.Fatal(err)
	}
	if _, err := d.client.Up(ctx, &p); errs.KindOf(err) != errs.Conflict {
		t.Errorf("up while the project is taken down: err = %v, want conflict", err)
	}
	if _, err := d.client.Replicas(ctx, "nope"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("replicas of an unknown project: err = %v, want not-found", err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := d.client.Down(short, "demo", false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("down that nobody carries out: err = %v, want the caller's deadline", err)
	}

	nobody := api.NewClient(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := nobody.Projects(ctx); errs.KindOf(err) != errs.Unavailable {
		t.Errorf("no daemon: err = %v, want unavailable", err)
	}
}

func TestEventsFollow(t *testing.T) {
	tests := []struct {
		name  string
		q     store.Query
		first []uint64 // the seqs of the entries there before, sent first
		then  []uint64 // the seqs of the entries appended while following
	}{
		{name: "all", q: store.Query{Project: "demo"}, first: []uint64{1, 3}, then: []uint64{5}},
		{name: "the newest, then every new one", q: store.Query{Project: "demo", Limit: 1}, first: []uint64{3}, then: []uint64{5}},
		{name: "after, every project", q: store.Query{After: 2}, first: []uint64{3}, then: []uint64{4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t)
			mustAppend(t, d.st, store.Entry{Project: "demo", Action: "up"}, store.Entry{Project: "other", Action: "up"},
				store.Entry{Project: "demo", Action: "create"})

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			got := make(chan store.Entry, 16)
			done := make(chan error, 1)
			go func() {
				done <- d.client.Events(ctx, tt.q, true, func(e store.Entry) error {
					got <- e
					return nil
				})
			}()
			want := append(slices.Clone(tt.first), tt.then...)
			for i, seq := range want {
				if i == len(tt.first) {
					mustAppend(t, d.st, store.Entry{Project: "other", Action: "down"}, store.Entry{Project: "demo", Action: "restart"})
				}
				select {
				case e := <-got:
					if e.Seq != seq {
						t.Fatalf("entry %d: seq %d (%s of %s), want %d", i, e.Seq, e.Action, e.Project, seq)
					}
				case <-time.After(waitFor):
					t.Fatalf("no entry %d (seq %d) within %s", i, seq, waitFor)
				}
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("following ended by its context: err = %v, want nil", err)
				}
			case <-time.After(waitFor):
				t.Fatal("following did not end with its context")
			}
			select {
			case e := <-got:
				t.Errorf("unexpected entry %+v", e)
			default:
			}
		})
	}
}

func mustAppend(t *testing.T, s store.Store, entries ...store.Entry) {
	t.Helper()
	if _, err := s.Append(entries...); err != nil {
		t.Fatal(err)
	}
}
