package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// Client talks to a daemon over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &Client{socket: socket, http: &http.Client{Transport: tr}}
}

// Up hands the daemon a project's desired state.
func (c *Client) Up(ctx context.Context, p *spec.Project) (store.Record, error) {
	var rec store.Record
	err := c.do(ctx, http.MethodPut, "/v1/projects/"+url.PathEscape(p.Name), nil, p, &rec)
	return rec, err
}

// UpSelected hands over the services of p (some services of a project and what
// they depend on), leaving the project's other services as they run.
func (c *Client) UpSelected(ctx context.Context, p *spec.Project) (store.Record, error) {
	var rec store.Record
	err := c.do(ctx, http.MethodPut, "/v1/projects/"+url.PathEscape(p.Name), url.Values{"keep_others": {"true"}}, p, &rec)
	return rec, err
}

// Down takes a project down and returns once it is gone.
func (c *Client) Down(ctx context.Context, name string, volumes bool) error {
	q := url.Values{}
	if volumes {
		q.Set("volumes", "true")
	}
	return c.do(ctx, http.MethodDelete, "/v1/projects/"+url.PathEscape(name), q, nil, nil)
}

// Heal lifts a service's quarantine by hand; it returns what was done.
func (c *Client) Heal(ctx context.Context, project, service string) (string, error) {
	var out struct {
		Message string `json:"message"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(project)+"/services/"+url.PathEscape(service)+"/heal", nil, nil, &out)
	return out.Message, err
}

// Rollback rolls a service back by hand to the spec it ran before; it returns what was done.
func (c *Client) Rollback(ctx context.Context, project, service string) (string, error) {
	var out struct {
		Message string `json:"message"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(project)+"/services/"+url.PathEscape(service)+"/rollback", nil, nil, &out)
	return out.Message, err
}

// Projects lists the projects the daemon keeps.
func (c *Client) Projects(ctx context.Context) ([]store.Record, error) {
	var recs []store.Record
	err := c.do(ctx, http.MethodGet, "/v1/projects", nil, nil, &recs)
	return recs, err
}

// Replicas reports the replicas of one project, or all when project is "".
func (c *Client) Replicas(ctx context.Context, project string) ([]supervisor.Replica, error) {
	q := url.Values{}
	if project != "" {
		q.Set("project", project)
	}
	var reps []supervisor.Replica
	err := c.do(ctx, http.MethodGet, "/v1/replicas", q, nil, &reps)
	return reps, err
}

// Traffic returns what the proxy measured per service, for one project or all.
func (c *Client) Traffic(ctx context.Context, project string) ([]proxy.ServiceStats, error) {
	q := url.Values{}
	if project != "" {
		q.Set("project", project)
	}
	var stats []proxy.ServiceStats
	err := c.do(ctx, http.MethodGet, "/v1/traffic", q, nil, &stats)
	return stats, err
}

// StoreStatus says whether the daemon's store takes writes (a full disk under --data does not).
func (c *Client) StoreStatus(ctx context.Context) (supervisor.StoreStatus, error) {
	var st supervisor.StoreStatus
	err := c.do(ctx, http.MethodGet, "/v1/store", nil, nil, &st)
	return st, err
}

// Events calls fn for each journal entry matching q; with follow it keeps
// waiting for new ones until ctx ends.
func (c *Client) Events(ctx context.Context, q store.Query, follow bool, fn func(store.Entry) error) error {
	v := url.Values{}
	for k, f := range map[string]string{"project": q.Project, "service": q.Service, "action": q.Action} {
		if f != "" {
			v.Set(k, f)
		}
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatUint(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if follow {
		v.Set("follow", "true")
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/events", v, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e store.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("api: bad event from daemon: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

// Logs copies a service's output (slot > 0: one replica's) to w, each line
// after its container's name; following until ctx ends.
func (c *Client) Logs(ctx context.Context, project, service string, slot, tail int, follow bool, w io.Writer) error {
	v := url.Values{}
	if slot > 0 {
		v.Set("slot", strconv.Itoa(slot))
	}
	if tail > 0 {
		v.Set("tail", strconv.Itoa(tail))
	}
	if follow {
		v.Set("follow", "true")
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(project)+"/services/"+url.PathEscape(service)+"/logs", v, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("api: bad answer from daemon: %w", err)
	}
	return nil
}

// send makes a request and turns an error answer into an errs.Error of its kind.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := "http://tend" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errs.E(errs.Unavailable, "cannot reach the tend daemon at %s (is `tend serve` running? set --socket or TEND_SOCKET)", c.socket)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	var eb errorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Error == "" {
		return nil, errs.E(errs.Internal, "daemon answered %s", resp.Status)
	}
	return nil, &errs.Error{Kind: eb.Kind, Msg: eb.Error}
}
