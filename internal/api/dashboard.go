package api

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/tend-sh/tend/internal/access"
)

// dashboardFiles are the dashboard's page, script and style, built into the
// binary: the browser fetches nothing from elsewhere (the CSP says so too).
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardCSP keeps the page to its own origin: no outside scripts, styles
// or connections, no framing.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// dashboard serves the page at / and its assets under /ui/. They hold no
// data: the page asks for a token and calls /v1 with it, so the TCP listener
// serves them without one.
func dashboard(mux *http.ServeMux) {
	files, _ := fs.Sub(dashboardFiles, "dashboard")
	index, _ := fs.ReadFile(files, "index.html")
	assets := http.StripPrefix("/ui/", http.FileServerFS(files))
	headers := func(w http.ResponseWriter) {
		w.Header().Set("Content-Security-Policy", dashboardCSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-cache")
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		headers(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(index)
	})
	mux.HandleFunc("GET /ui/", func(w http.ResponseWriter, r *http.Request) {
		headers(w)
		assets.ServeHTTP(w, r)
	})
}

// isDashboard: a request for the dashboard's page or assets.
func isDashboard(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/ui/"))
}

// Identity is the answer of GET /v1/whoami: the role the request acts with,
// so the dashboard shows actions only to those who may take them.
type Identity struct {
	Role access.Role `json:"role"`
	Name string      `json:"name"` // the token's name; empty on the unix socket
}

type tokenKey struct{}

func withToken(ctx context.Context, tok access.Token) context.Context {
	return context.WithValue(ctx, tokenKey{}, tok)
}

// whoami: the request's token, or admin on the unix socket, which needs none.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	id := Identity{Role: access.Admin}
	if tok, ok := r.Context().Value(tokenKey{}).(access.Token); ok {
		id = Identity{Role: tok.Role, Name: tok.Name}
	}
	writeJSON(w, http.StatusOK, id)
}
