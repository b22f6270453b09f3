package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tend-sh/tend/internal/access"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/runtime"
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
	Metrics    http.Handler     // Prometheus exposition, served at GET /metrics; nil: none
	Tokens     *access.Tokens   // the tokens of the TCP listener; nil: no TCP listener, no token routes
	Now        func() time.Time // the time of token records; nil: time.Now
	// Registry gets the HTTPS listener's collectors (refused requests); nil: none shown.
	Registry prometheus.Registerer
	// Cluster is the daemon's cluster membership; nil: a single host (its cluster routes say so).
	Cluster Cluster
}

// maxBody bounds a request body; a project is a few kilobytes.
const maxBody = 8 << 20

// route is one endpoint: the pattern as http.ServeMux takes it, and whether
// it is served on the unix socket only.
type route struct {
	pattern    string
	handle     http.HandlerFunc
	socketOnly bool
}

// routes are every endpoint of the API; openapi.yaml documents each of them
// (openapi_test.go checks both ways).
func (s *Server) routes() []route {
	rs := []route{
		{pattern: "GET /v1/version", handle: s.version},
		{pattern: "GET /v1/whoami", handle: s.whoami}, // dashboard.go
		{pattern: "GET /v1/openapi.yaml", handle: serveOpenAPI},
		{pattern: "PUT /v1/projects/{name}", handle: s.putProject},
		{pattern: "GET /v1/projects", handle: s.listProjects},
		{pattern: "DELETE /v1/projects/{name}", handle: s.deleteProject},
		{pattern: "GET /v1/replicas", handle: s.replicas},
		{pattern: "GET /v1/events", handle: s.events},
		{pattern: "POST /v1/build", handle: s.build},
		{pattern: "GET /v1/traffic", handle: s.traffic},
		{pattern: "GET /v1/store", handle: s.storeStatus},
		{pattern: "GET /v1/scale", handle: s.scaleStatus},
		{pattern: "POST /v1/projects/{name}/services/{service}/scale", handle: s.scale},
		{pattern: "POST /v1/projects/{name}/services/{service}/heal", handle: s.heal},
		{pattern: "POST /v1/projects/{name}/services/{service}/restart", handle: s.restart},
		{pattern: "POST /v1/projects/{name}/services/{service}/rollback", handle: s.rollback},
		{pattern: "GET /v1/projects/{name}/services/{service}/logs", handle: s.logs},
	}
	if s.Metrics != nil {
		rs = append(rs, route{pattern: "GET /metrics", handle: s.Metrics.ServeHTTP})
	}
	if s.Tokens != nil {
		rs = append(rs, s.tokenRoutes()...) // tokens.go
	}
	return append(rs, s.clusterRoutes()...) // cluster.go
}

// Handler routes the API of the unix socket.
func (s *Server) Handler() http.Handler { return s.mux(true) }

func (s *Server) mux(socket bool) *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		h := rt.handle
		if rt.socketOnly && !socket {
			h = func(w http.ResponseWriter, r *http.Request) {
				s.fail(w, errs.E(errs.Forbidden, "%s %s is served on the unix socket only", r.Method, r.URL.Path))
			}
		}
		mux.HandleFunc(rt.pattern, h)
	}
	dashboard(mux) // dashboard.go: the page at /, on both listeners
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

// Serve serves the socket's API on l until ctx ends, and returns once the
// requests under way have finished (or 2 s have passed).
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, s.Handler())
}

func (s *Server) serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug)} // TLS handshake noise
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
	if err := decodeBody(w, r, &p); err != nil {
		s.fail(w, errs.E(errs.Invalid, "request body is not a project: %v", err))
		return
	}
	if name := r.PathValue("name"); p.Name != name {
		s.fail(w, errs.E(errs.Invalid, "project name %q in the body differs from %q in the path", p.Name, name))
		return
	}
	keep, err := boolParam(r, "keep_others") // `tend up SERVICE...`: the body holds some services only
	if err != nil {
		s.fail(w, err)
		return
	}
	up := s.Supervisor.Up
	if keep {
		up = s.Supervisor.UpSelected
	}
	rec, err := up(r.Context(), p)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, redact(rec))
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	recs, err := s.Store.Projects()
	if err != nil {
		s.fail(w, err)
		return
	}
	for i := range recs {
		recs[i] = redact(recs[i])
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
	if s.Cluster != nil {
		reps = s.acrossNodes(reps) // cluster.go
	}
	writeJSON(w, http.StatusOK, nonNil(reps))
}

// storeStatus says whether the store takes writes, and what the journal holds in memory meanwhile.
func (s *Server) storeStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Supervisor.StoreStatus())
}

// rollback rolls a service back by hand to the spec it ran before.
func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	msg, err := s.Supervisor.Rollback(r.Context(), r.PathValue("name"), r.PathValue("service"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": msg})
}

// heal lifts a service's quarantine by hand.
func (s *Server) heal(w http.ResponseWriter, r *http.Request) {
	msg, err := s.Supervisor.Heal(r.Context(), r.PathValue("name"), r.PathValue("service"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": msg})
}

// restart restarts a service's running replicas by hand, one at a time.
func (s *Server) restart(w http.ResponseWriter, r *http.Request) {
	msg, err := s.Supervisor.Restart(r.Context(), r.PathValue("name"), r.PathValue("service"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": msg})
}

// logs streams a service's output (slot: one replica's), each line after
// its container's name; tail and follow as docker logs has them.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	follow, err := boolParam(r, "follow")
	if err != nil {
		s.fail(w, err)
		return
	}
	tail, err := uintParam(r, "tail")
	if err != nil {
		s.fail(w, err)
		return
	}
	slot, err := uintParam(r, "slot")
	if err != nil {
		s.fail(w, err)
		return
	}
	target := r.PathValue("service")
	if slot > 0 {
		target += "/" + strconv.FormatUint(slot, 10)
	}
	lw := &textStream{w: w}
	err = s.Supervisor.Logs(r.Context(), r.PathValue("name"), target, runtime.LogOptions{Follow: follow, Tail: int(tail)}, lw)
	if err != nil && !lw.started {
		s.fail(w, err)
	}
}

// textStream is a plain-text answer that begins at its first write, so an
// error found before it can still be a 4xx.
type textStream struct {
	w       http.ResponseWriter
	started bool
}

func (t *textStream) Write(b []byte) (int, error) {
	if !t.started {
		t.started = true
		t.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		t.w.WriteHeader(http.StatusOK)
	}
	return t.w.Write(b)
}

func (t *textStream) Flush() {
	if f, ok := t.w.(http.Flusher); ok {
		f.Flush()
	}
}

// traffic is what the proxy measured per service and replica.
func (s *Server) traffic(w http.ResponseWriter, r *http.Request) {
	stats := s.Supervisor.TrafficStats()
	if p := r.URL.Query().Get("project"); p != "" {
		stats = slices.DeleteFunc(stats, func(st proxy.ServiceStats) bool { return st.Project != p })
	}
	writeJSON(w, http.StatusOK, nonNil(stats))
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
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.Forbidden:
		return http.StatusForbidden
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

// decodeBody decodes a request body that must be one JSON value of v's
// type: unknown fields and anything after the value are refused.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more after the JSON value")
	}
	return nil
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
