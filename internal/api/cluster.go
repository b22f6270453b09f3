package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/nodes"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// Cluster is this daemon's part of a cluster (internal/cluster.Member).
type Cluster interface {
	Nodes(ctx context.Context) ([]nodes.Status, error)
	JoinToken(ctx context.Context, role nodes.Role) (string, error)
	// Reports are the replicas each node last reported of its own slots
	// (JSON of []supervisor.Replica), by node.
	Reports() map[string][]byte
	Node() string
	SetMode(ctx context.Context, node string, mode nodes.Mode) error
}

// acrossNodes puts in place of each slot this node does not run the
// replica as the node that runs it reported it: `tend ps` on any node shows
// the whole cluster.
func (s *Server) acrossNodes(local []supervisor.Replica) []supervisor.Replica {
	reports := s.Cluster.Reports()
	type slot struct {
		project, service string
		n                int
	}
	theirs := map[string]map[slot]supervisor.Replica{}
	for node, b := range reports {
		var reps []supervisor.Replica
		if json.Unmarshal(b, &reps) != nil {
			continue
		}
		theirs[node] = map[slot]supervisor.Replica{}
		for _, r := range reps {
			theirs[node][slot{r.Project, r.Service, r.Slot}] = r
		}
	}
	self := s.Cluster.Node()
	for i, r := range local {
		if r.Node == "" || r.Node == self || r.Container != "" {
			continue
		}
		if their, ok := theirs[r.Node][slot{r.Project, r.Service, r.Slot}]; ok {
			local[i] = their
		}
	}
	return local
}

func (s *Server) clusterRoutes() []route {
	return []route{
		{pattern: "GET /v1/nodes", handle: s.listNodes},
		// A join token admits a host to the cluster: the socket's owner only.
		{pattern: "GET /v1/cluster/join-token", handle: s.joinToken, socketOnly: true},
		{pattern: "POST /v1/nodes/{name}/{action}", handle: s.nodeAction},
	}
}

var errNoCluster = errs.E(errs.Conflict, "this tend is not in a cluster (it was started without --cluster-init or --join)")

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	if s.Cluster == nil {
		s.fail(w, errNoCluster)
		return
	}
	all, err := s.Cluster.Nodes(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(all))
}

// nodeAction cordons, drains or uncordons a node.
func (s *Server) nodeAction(w http.ResponseWriter, r *http.Request) {
	if s.Cluster == nil {
		s.fail(w, errNoCluster)
		return
	}
	modes := map[string]nodes.Mode{"cordon": nodes.ModeCordon, "drain": nodes.ModeDrain, "uncordon": nodes.Active}
	mode, ok := modes[r.PathValue("action")]
	if !ok {
		s.fail(w, errs.E(errs.NotFound, "no such node action %q: cordon, drain or uncordon", r.PathValue("action")))
		return
	}
	if err := s.Cluster.SetMode(r.Context(), r.PathValue("name"), mode); err != nil {
		s.fail(w, err)
		return
	}
	s.journal(store.Entry{Action: "node-" + r.PathValue("action"), Message: "node " + r.PathValue("name")})
	writeJSON(w, http.StatusOK, map[string]string{"message": "node " + r.PathValue("name") + " " + r.PathValue("action") + "ed"})
}

// NodeAction cordons, drains or uncordons a node.
func (c *Client) NodeAction(ctx context.Context, node, action string) (string, error) {
	var out struct {
		Message string `json:"message"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(node)+"/"+url.PathEscape(action), nil, nil, &out)
	return out.Message, err
}

// JoinTokenAnswer is the body of GET /v1/cluster/join-token.
type JoinTokenAnswer struct {
	Role  nodes.Role `json:"role"`
	Token string     `json:"token"`
}

func (s *Server) joinToken(w http.ResponseWriter, r *http.Request) {
	if s.Cluster == nil {
		s.fail(w, errNoCluster)
		return
	}
	role := nodes.Role(r.URL.Query().Get("role"))
	if role == "" {
		role = nodes.Worker
	}
	if role != nodes.Worker && role != nodes.Manager {
		s.fail(w, errs.E(errs.Invalid, "query parameter role=%q: worker or manager", role))
		return
	}
	tok, err := s.Cluster.JoinToken(r.Context(), role)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, JoinTokenAnswer{Role: role, Token: tok})
}

// Nodes lists the cluster's nodes.
func (c *Client) Nodes(ctx context.Context) ([]nodes.Status, error) {
	var out []nodes.Status
	err := c.do(ctx, http.MethodGet, "/v1/nodes", nil, nil, &out)
	return out, err
}

// JoinToken asks a manager for the token that lets a host join as role.
func (c *Client) JoinToken(ctx context.Context, role nodes.Role) (string, error) {
	var out JoinTokenAnswer
	err := c.do(ctx, http.MethodGet, "/v1/cluster/join-token", map[string][]string{"role": {string(role)}}, nil, &out)
	return out.Token, err
}
