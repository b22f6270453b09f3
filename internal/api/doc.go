// Package api is tend's HTTP+JSON API: the server the daemon runs and the
// client the CLI uses. Error kinds (internal/errs) are mapped to HTTP status
// codes here, once; the client maps them back.
//
// Every route is in one table (server.go, routes) and documented in
// openapi.yaml, served at GET /v1/openapi.yaml; openapi_test.go checks the
// table against the document both ways and real answers against its schemas.
//
// The same routes are served on the unix socket (Serve; no token, the
// socket's mode is its access control) and on the HTTPS listener (ServeTLS;
// a bearer token of internal/access on every request, read tokens only GET,
// token management socket only).
package api
