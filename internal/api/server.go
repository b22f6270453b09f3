package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// Server serves the API for one supervisor.
type Server struct {
	Supervisor *supervisor.Supervisor
	Store      store.Store
	Log        *slog.Logger
	Version    string
	Metrics    http.Handler // Prometheus exposition, served at GET /metrics; nil: none
}

// maxBody bounds a request body; a project is a few kilobytes.
const maxBody = 8 << 20

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", s.version)
	mux.HandleFunc("PUT /v1/projects/{name}", s.putProject)
	mux.HandleFunc("GET /v1/projects", s.listProjects)
	mux.HandleFunc("DELETE /v1/projects/{name}", s.deleteProject)
	mux.HandleFunc("GET /v1/replicas", s.replicas)
	mux.HandleFunc("GET /v1/events", s.events)
	mux.HandleFunc("POST /v1/build", s.build)
	mux.HandleFunc("GET /v1/traffic", s.traffic)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, errs.E(errs.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// Listen creates the unix socket at path with mode 0600, replacing a stale one
// but never one that a live daemon answers on, nor a file that is no socket.
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, errs.E(errs.Conflict, "another tend is serving on %s", path)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return nil, errs.E(errs.Invalid, "%s exists and is not a socket; not replacing it", path)
	}
	_ = os.Remove(path)
	old := syscall.Umask(0o177) // no moment where others can connect
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, fmt.Errorf("listen on %s: %w", path, err))
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return l, nil
}

// Serve serves on l until ctx ends, and returns once the requests under way
// have finished (or 2 s have passed).
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serve: %w", err)
	}
	<-stopped
	return nil
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.Version})
}

func (s *Server) putProject(w http.ResponseWriter, r *http.Request) {
	var p spec.Project
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		s.fail(w, errs.E(errs.Invalid, "request body is not a project: %v", err))
		return
	}
	if name := r.PathValue("name"); p.Name != name {
		s.fail(w, errs.E(errs.Invalid, "project name %q in the body differs from %q in the path", p.Name, name))
		return
	}
	rec, err := s.Supervisor.Up(r.Context(), p)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	recs, err := s.Store.Projects()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(recs))
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) {
	volumes, err := boolParam(r, "volumes")
	if err != nil {
		s.fail(w, err)
		return
	}
	if err := s.Supervisor.Down(r.Context(), r.PathValue("name"), volumes); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) replicas(w http.ResponseWriter, r *http.Request) {
	reps, err := s.Supervisor.Status(r.Context(), r.URL.Query().Get("project"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(reps))
}

// traffic is what the proxy measured per service and replica.
func (s *Server) traffic(w http.ResponseWriter, r *http.Request) {
	stats := s.Supervisor.TrafficStats()
	if p := r.URL.Query().Get("project"); p != "" {
		stats = slices.DeleteFunc(stats, func(st proxy.ServiceStats) bool { return st.Project != p })
	}
	writeJSON(w, http.StatusOK, nonNil(stats))
}

// events writes the journal as JSON lines; with follow it keeps the response
// open and writes new entries as they are appended.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := store.Query{Project: r.URL.Query().Get("project")}
	var err error
	if q.After, err = uintParam(r, "after"); err != nil {
		s.fail(w, err)
		return
	}
	limit, err := uintParam(r, "limit")
	if err != nil {
		s.fail(w, err)
		return
	}
	q.Limit = int(limit)
	follow, err := boolParam(r, "follow")
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	for {
		changed := s.Store.Appended() // taken before the read, so no entry falls between
		entries, err := s.Store.Journal(q)
		if err != nil {
			s.Log.Error("read journal", "err", err)
			return
		}
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return // the client went away
			}
			q.After = e.Seq
		}
		if !follow {
			return
		}
		q.Limit = 0
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		}
	}
}

// status maps an error kind to its HTTP status: the one place this is decided.
func status(k errs.Kind) int {
	switch k {
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error string    `json:"error"`
	Kind  errs.Kind `json:"kind"`
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	k := errs.KindOf(err)
	if k == errs.Internal {
		s.Log.Error("api request failed", "err", err)
	}
	writeJSON(w, status(k), errorBody{Error: err.Error(), Kind: k})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errs.E(errs.Invalid, "query parameter %s=%q is not a boolean", name, v)
	}
	return b, nil
}

func uintParam(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, errs.E(errs.Invalid, "query parameter %s=%q is not a whole number", name, v)
	}
	return n, nil
}
