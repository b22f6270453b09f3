// Package docker implements runtime.Runtime on the Docker Engine API through
// the official SDK (github.com/moby/moby/client). It is the only package that
// imports the SDK. It translates between the engine and tend's vocabulary and
// holds no policy: what to create, restart or remove is the planner's call.
//
// The client negotiates the API version with the engine, so the same binary
// drives Docker 20.10 (API 1.41) and current engines (1.44+).
//
// Builds go to the engine's classic builder, which needs no BuildKit session:
// the context directory is archived (honouring .dockerignore) while it is sent,
// and the engine's JSON stream is passed on as text, its error as a
// runtime.BuildError naming the step that failed.
package docker
