package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// post sends a JSON body (nil: none) and decodes the answer into out (nil: discarded).
func (d *Docker) post(ctx context.Context, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("engine: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("engine: POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Healthcheck is a container health check as the engine runs it. Test is in the engine's
// form: ["CMD", "/bin", "arg"] runs the binary directly (what an image without a shell
// needs), ["CMD-SHELL", "cmd"] through /bin/sh.
type Healthcheck struct {
	Test     []string
	Interval time.Duration
	Timeout  time.Duration
	Retries  int
}

// ContainerSpec is what RunContainer creates: the part of `docker run` the benchmarks
// need, plus an exec-form health check, which `docker run --health-cmd` cannot express
// (it always stores CMD-SHELL).
type ContainerSpec struct {
	Name    string
	Image   string
	Network string // a user-defined network; empty: the engine's default bridge
	Restart string // restart policy name: "always", "unless-stopped", ...; empty: none
	Labels  map[string]string
	Health  *Healthcheck
}

// RunContainer creates and starts a container through the Engine API, like
// `docker run -d`, and returns its ID.
func (d *Docker) RunContainer(ctx context.Context, s ContainerSpec) (string, error) {
	type healthcheck struct {
		Test     []string
		Interval int64 // nanoseconds
		Timeout  int64
		Retries  int
	}
	body := struct {
		Image       string
		Labels      map[string]string `json:",omitempty"`
		Healthcheck *healthcheck      `json:",omitempty"`
		HostConfig  struct {
			NetworkMode   string `json:",omitempty"`
			RestartPolicy struct {
				Name string `json:",omitempty"`
			}
		}
	}{Image: s.Image, Labels: s.Labels}
	if h := s.Health; h != nil {
		body.Healthcheck = &healthcheck{Test: h.Test, Interval: int64(h.Interval), Timeout: int64(h.Timeout), Retries: h.Retries}
	}
	body.HostConfig.NetworkMode = s.Network
	body.HostConfig.RestartPolicy.Name = s.Restart
	var created struct {
		ID string `json:"Id"`
	}
	if err := d.post(ctx, "/containers/create?name="+url.QueryEscape(s.Name), body, &created); err != nil {
		return "", fmt.Errorf("create %s: %w", s.Name, err)
	}
	if err := d.post(ctx, "/containers/"+created.ID+"/start", nil, nil); err != nil {
		return created.ID, fmt.Errorf("start %s: %w", s.Name, err)
	}
	return created.ID, nil
}

// BridgeAddress returns the container's first address that lies on a bridge of this host
// (see LocalTarget), or "" when it has none: one inspect.
func (d *Docker) BridgeAddress(ctx context.Context, id string) (string, error) {
	cs, err := d.Inspect(ctx, id)
	if err != nil {
		return "", err
	}
	for _, n := range cs.NetworkSettings.Networks {
		if _, err := LocalTarget(id, n.IPAddress); err == nil {
			return n.IPAddress, nil
		}
	}
	return "", nil
}

// GWBridgeAddress returns a swarm task's address on docker_gwbridge, or "" when it has
// none: one network inspect. A task's overlay address is not reachable from the host;
// this one is, and the container's inspect document does not list it.
func (d *Docker) GWBridgeAddress(ctx context.Context, id string) (string, error) {
	eps, err := d.NetworkEndpoints(ctx, "docker_gwbridge")
	if err != nil {
		return "", err
	}
	return eps[id], nil
}

// Kill sends the container SIGKILL, like `docker kill`, without the CLI's fork (tens of
// milliseconds), so a kill lands when it is scheduled.
func (d *Docker) Kill(ctx context.Context, id string) error {
	if err := d.post(ctx, "/containers/"+url.PathEscape(id)+"/kill", nil, nil); err != nil {
		return fmt.Errorf("kill %.12s: %w", id, err)
	}
	return nil
}
