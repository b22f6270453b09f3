package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// apiRoutes are the endpoints FuzzAPIRequest picks from: each with a body
// or query the handler decodes. GET /v1/events?follow=1 is left out: it
// answers only when the client goes.
var apiRoutes = []struct{ method, path string }{
	{http.MethodPut, "/v1/projects/%s"},
	{http.MethodPost, "/v1/projects/%s/services/%s/scale"},
	{http.MethodPost, "/v1/build"},
	{http.MethodGet, "/v1/events"},
	{http.MethodGet, "/v1/replicas"},
	{http.MethodGet, "/v1/scale"},
	{http.MethodGet, "/v1/traffic"},
	{http.MethodPost, "/v1/projects/%s/services/%s/heal"},
	{http.MethodDelete, "/v1/projects/%s"},
	{http.MethodGet, "/v1/projects"},
}

// FuzzAPIRequest sends the API handler requests with arbitrary names,
// queries and bodies, on a daemon over the fake runtime: it never panics,
// never answers 500 (bad input is the client's error, said in a JSON error
// body on one line), and takes a body only when it is exactly one JSON
// value (trailing bytes are refused, not ignored).
func FuzzAPIRequest(f *testing.F) {
	proj := projectJSON(&testing.T{}, project())
	for _, seed := range []struct {
		route                byte
		name, service, query string
		body                 string
	}{
		{0, "demo", "", "", proj},
		{0, "demo", "", "keep_others=true", proj},
		{0, "demo", "", "", proj + `{"name":"other"}`},
		{0, "demo", "", "keep_others=maybe", proj},
		{1, "demo", "web", "", `{"replicas":3}`},
		{1, "demo", "web", "", `{"auto":true}`},
		{1, "demo", "web", "", `{"replicas":-1}`},
		{1, "demo", "nope", "", `{"replicas":1,"auto":true}`},
		{2, "", "", "", `{"project":"demo","service":"web","image":"web:dev","build":{"context":"."}}`},
		{3, "", "", "project=demo&after=3&limit=10", ""},
		{3, "", "", "limit=-1", ""},
		{4, "", "", "project=demo", ""},
		{5, "", "", "project=nope", ""},
		{7, "demo", "web", "", ""},
		{8, "demo", "", "volumes=true", ""},
		{8, "demo", "", "volumes=2", ""},
	} {
		f.Add(seed.route, seed.name, seed.service, seed.query, []byte(seed.body))
	}
	h := fuzzDaemon(f)
	f.Fuzz(func(t *testing.T, route byte, name, service, query string, body []byte) {
		r := apiRoutes[int(route)%len(apiRoutes)]
		path := r.path
		switch strings.Count(path, "%s") {
		case 1:
			path = strings.Replace(path, "%s", url.PathEscape(name), 1)
		case 2:
			path = strings.Replace(strings.Replace(path, "%s", url.PathEscape(name), 1), "%s", url.PathEscape(service), 1)
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		q.Del("follow")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, r.method, "http://tend"+path+"?"+q.Encode(), bytes.NewReader(body))
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		code := rec.Code
		if code >= 500 {
			t.Fatalf("%s %s: %d %s", r.method, req.URL, code, rec.Body)
		}
		if code >= 400 {
			var e struct{ Error, Kind string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Kind == "" {
				t.Fatalf("%s %s: %d with a body that is no error: %q", r.method, req.URL, code, rec.Body)
			}
			if strings.Contains(e.Error, "\n") {
				t.Fatalf("%s %s: error on more than one line: %q", r.method, req.URL, e.Error)
			}
			return
		}
		if code >= 300 { // ServeMux's redirect of a path with an empty name
			return
		}
		if r.method != http.MethodGet && r.method != http.MethodDelete {
			dec := json.NewDecoder(bytes.NewReader(body))
			var v any
			if dec.Decode(&v) != nil || dec.More() || dec.InputOffset() < int64(len(bytes.TrimRight(body, " \t\r\n"))) {
				t.Fatalf("%s %s: %d for a body that is not one JSON value: %q", r.method, req.URL, code, body)
			}
		}
	})
}

// fuzzDaemon is the API handler of a daemon over the fake runtime and a
// Bolt store, its supervisor running, for the whole fuzzing run.
func fuzzDaemon(f *testing.F) http.Handler {
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(f.TempDir(), "tend.db")})
	if err != nil {
		f.Fatal(err)
	}
	rt := fake.New()
	sup := supervisor.New(supervisor.Config{Runtime: rt, Store: st, Clock: clock.Real{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	srv := &api.Server{Supervisor: sup, Store: st, Log: slog.New(slog.DiscardHandler), Version: "fuzz"}
	return srv.Handler()
}
