package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/supervisor"
)

// ScaleRequest is the body of POST /v1/projects/{name}/services/{service}/scale:
// a count to pin, or Auto to hand the count back to the autoscaler.
type ScaleRequest struct {
	Replicas *int `json:"replicas,omitempty"`
	Auto     bool `json:"auto,omitempty"`
}

func (s *Server) scaleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Supervisor.ScaleStatus(r.Context(), r.URL.Query().Get("project"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(st))
}

func (s *Server) scale(w http.ResponseWriter, r *http.Request) {
	var req ScaleRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, errs.E(errs.Invalid, "request body is not a scale request: %v", err))
		return
	}
	if (req.Replicas == nil) == !req.Auto {
		s.fail(w, errs.E(errs.Invalid, "want either replicas or auto"))
		return
	}
	n := 0
	if req.Replicas != nil {
		n = *req.Replicas
	}
	st, err := s.Supervisor.Scale(r.PathValue("name"), r.PathValue("service"), n, req.Auto)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// ScaleStatus reports the counts of one project's services, or all when project is "".
func (c *Client) ScaleStatus(ctx context.Context, project string) ([]supervisor.ScaleStatus, error) {
	q := url.Values{}
	if project != "" {
		q.Set("project", project)
	}
	var st []supervisor.ScaleStatus
	err := c.do(ctx, http.MethodGet, "/v1/scale", q, nil, &st)
	return st, err
}

// Scale pins a service's count, or hands it back to the autoscaler.
func (c *Client) Scale(ctx context.Context, project, service string, req ScaleRequest) (supervisor.ScaleStatus, error) {
	var st supervisor.ScaleStatus
	err := c.do(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(project)+"/services/"+url.PathEscape(service)+"/scale", nil, req, &st)
	return st, err
}
