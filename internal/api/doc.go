// Package api is tend's HTTP+JSON API on a unix socket: the server the daemon
// runs and the client the CLI uses. Error kinds (internal/errs) are mapped to
// HTTP status codes here, once; the client maps them back.
//
//	PUT    /v1/projects/{name}          body: spec.Project    -> store.Record
//	GET    /v1/projects                                        -> []store.Record
//	DELETE /v1/projects/{name}?volumes=1                      -> 204 when it is down
//	GET    /v1/replicas[?project=P]                           -> []supervisor.Replica
//	GET    /v1/events[?project=P&after=SEQ&limit=N&follow=1] -> store.Entry per line
//	POST   /v1/build                    body: supervisor.BuildRequest -> BuildMessage per line:
//	                                    build output, then the image or the error
//	GET    /v1/version                                        -> {"version": ...}
package api
