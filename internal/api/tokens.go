package api

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tend-sh/tend/internal/access"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/store"
)

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Name string      `json:"name,omitempty"`
	Role access.Role `json:"role"`
}

// NewToken is the answer to POST /v1/tokens: the only time the secret is sent.
type NewToken struct {
	Token  access.Token `json:"token"`
	Secret string       `json:"secret"`
}

// tokenRoutes manage tokens; they are on the unix socket only, so a token
// cannot mint tokens, and a leaked admin token cannot outlive its removal.
func (s *Server) tokenRoutes() []route {
	return []route{
		{pattern: "POST /v1/tokens", handle: s.createToken, socketOnly: true},
		{pattern: "GET /v1/tokens", handle: s.listTokens, socketOnly: true},
		{pattern: "DELETE /v1/tokens/{name}", handle: s.removeToken, socketOnly: true},
	}
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, errs.E(errs.Invalid, "request body is not a token request: %v", err))
		return
	}
	tok, secret, err := s.Tokens.Create(req.Name, req.Role, s.now())
	if err != nil {
		s.fail(w, err)
		return
	}
	// The journal records who may act, never the secret.
	s.journal(store.Entry{Action: "token-create", Reason: string(tok.Role), Message: "token " + tok.Name + " (id " + tok.ID + ")"})
	writeJSON(w, http.StatusCreated, NewToken{Token: tok, Secret: secret})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, nonNil(s.Tokens.List()))
}

func (s *Server) removeToken(w http.ResponseWriter, r *http.Request) {
	tok, err := s.Tokens.Remove(r.PathValue("name"))
	if err != nil {
		s.fail(w, err)
		return
	}
	s.journal(store.Entry{Action: "token-remove", Reason: string(tok.Role), Message: "token " + tok.Name + " (id " + tok.ID + ")"})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) journal(e store.Entry) {
	e.Time = s.now()
	if _, err := s.Store.Append(e); err != nil {
		s.Log.Error("journal", "action", e.Action, "err", err)
	}
}

// TCPHandler is the API of the HTTPS listener: the socket's routes but token
// management, each request authorized by its bearer token.
func (s *Server) TCPHandler() http.Handler {
	mux := s.mux(false)
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tend_api_refused_total",
		Help: "Requests to the HTTPS listener refused: 401 without a valid token, 403 with a read token on an action.",
	}, []string{"code"})
	if s.Registry != nil {
		if err := s.Registry.Register(refused); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				refused, _ = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isDashboard(r) { // static files, no data: the page asks for a token itself
			mux.ServeHTTP(w, r)
			return
		}
		tok, err := s.authorize(r)
		if err != nil {
			code := status(errs.KindOf(err))
			refused.WithLabelValues(strconv.Itoa(code)).Inc()
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tend"`)
				s.Log.Debug("api: refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "code", code)
			} else {
				// A valid token reaching beyond its role is worth a line; never the token itself.
				s.Log.Warn("api: refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
			}
			s.fail(w, err)
			return
		}
		mux.ServeHTTP(w, r.WithContext(withToken(r.Context(), tok)))
	})
}

// authorize lets a request through with a valid token whose role allows it:
// a read token reads (GET), an admin token does anything. The answer never
// repeats what the request carried.
func (s *Server) authorize(r *http.Request) (access.Token, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" {
		return access.Token{}, errs.E(errs.Unauthenticated, "this listener needs a token: Authorization: Bearer TOKEN (tend token create)")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return access.Token{}, errs.E(errs.Unauthenticated, "the Authorization header must be Bearer TOKEN")
	}
	tok, ok := s.Tokens.Check(strings.TrimSpace(secret))
	if !ok {
		return access.Token{}, errs.E(errs.Unauthenticated, "the token is not valid (removed, or never made by this daemon)")
	}
	if tok.Role != access.Admin && r.Method != http.MethodGet && r.Method != http.MethodHead {
		return access.Token{}, errs.E(errs.Forbidden, "token %s has role %s: %s %s needs an admin token", tok.Name, tok.Role, r.Method, r.URL.Path)
	}
	return tok, nil
}

// ServeTLS serves TCPHandler over TLS on l until ctx ends; never plain HTTP.
func (s *Server) ServeTLS(ctx context.Context, l net.Listener, cert tls.Certificate) error {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return s.serve(ctx, tls.NewListener(l, cfg), s.TCPHandler())
}

// CreateToken asks the daemon for a new token; the answer holds its secret.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (NewToken, error) {
	var out NewToken
	err := c.do(ctx, http.MethodPost, "/v1/tokens", nil, req, &out)
	return out, err
}

// Tokens lists the daemon's tokens (never their secrets).
func (c *Client) Tokens(ctx context.Context) ([]access.Token, error) {
	var out []access.Token
	err := c.do(ctx, http.MethodGet, "/v1/tokens", nil, nil, &out)
	return out, err
}

// RemoveToken deletes a token by name or id.
func (c *Client) RemoveToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(name), nil, nil, nil)
}
