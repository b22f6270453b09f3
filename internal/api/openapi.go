package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the API's document (OpenAPI 3.1), as served at GET /v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}
