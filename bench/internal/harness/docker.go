package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Docker is a minimal Engine API client. The benchmarks use it where timing matters
// (the event stream and address lookups while a replica restarts, polling a stack until
// it runs), where forking the docker CLI would cost tens of milliseconds per call; setup
// and teardown use the CLI.
type Docker struct {
	hc     *http.Client
	stream *http.Client // no overall timeout: for the event stream
}

// NewDocker connects to DOCKER_HOST when it names a unix socket, else to
// /var/run/docker.sock. Paths are unversioned, so the engine uses its own API version.
func NewDocker() *Docker {
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		sock = strings.TrimPrefix(h, "unix://")
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns: 4,
	}
	return &Docker{hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}, stream: &http.Client{Transport: tr}}
}

func (d *Docker) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("engine: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("engine: GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Container is the part of a container listing the benchmarks read.
type Container struct {
	ID     string            `json:"Id"`
	Names  []string          `json:"Names"`
	State  string            `json:"State"`
	Status string            `json:"Status"` // "Up 3 seconds (healthy)"
	Labels map[string]string `json:"Labels"`
	// Networks maps network name to the container's endpoint on it.
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress string `json:"IPAddress"`
			NetworkID string `json:"NetworkID"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
}

// Name is the container's name without the leading slash.
func (c Container) Name() string {
	if len(c.Names) == 0 {
		return c.ID[:12]
	}
	return strings.TrimPrefix(c.Names[0], "/")
}

// Containers lists containers matching every label ("key=value" or "key"); with all
// false only running ones.
func (d *Docker) Containers(ctx context.Context, all bool, labels ...string) ([]Container, error) {
	q := url.Values{}
	if all {
		q.Set("all", "1")
	}
	if len(labels) > 0 {
		f, _ := json.Marshal(map[string][]string{"label": labels})
		q.Set("filters", string(f))
	}
	var out []Container
	err := d.get(ctx, "/containers/json?"+q.Encode(), &out)
	return out, err
}

// ContainerState is the part of a container's inspect document the benchmarks read.
type ContainerState struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State struct {
		Status     string    `json:"Status"`
		Running    bool      `json:"Running"`
		StartedAt  time.Time `json:"StartedAt"`
		FinishedAt time.Time `json:"FinishedAt"`
		Health     *Health   `json:"Health"`
	} `json:"State"`
	RestartCount int `json:"RestartCount"`
	// Networks maps network name to the container's endpoint on it. Swarm's
	// docker_gwbridge endpoint is not listed here (see NetworkEndpoints).
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress string `json:"IPAddress"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
}

// Health is a container's health-check state, as the engine keeps it.
type Health struct {
	Status        string `json:"Status"` // "starting", "healthy", "unhealthy"
	FailingStreak int    `json:"FailingStreak"`
	// Log holds the last five checks, oldest first.
	Log []HealthResult `json:"Log"`
}

// HealthResult is one health check the engine ran.
type HealthResult struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

// Inspect returns a container's state.
func (d *Docker) Inspect(ctx context.Context, id string) (ContainerState, error) {
	var out ContainerState
	err := d.get(ctx, "/containers/"+url.PathEscape(id)+"/json", &out)
	return out, err
}

// NetworkEndpoints returns the IPv4 address (without prefix length) of each container
// attached to a network, keyed by container ID. Swarm's docker_gwbridge lists task
// containers here and nowhere else.
func (d *Docker) NetworkEndpoints(ctx context.Context, network string) (map[string]string, error) {
	var out struct {
		Containers map[string]struct {
			IPv4Address string `json:"IPv4Address"`
		} `json:"Containers"`
	}
	if err := d.get(ctx, "/networks/"+url.PathEscape(network), &out); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(out.Containers))
	for id, ep := range out.Containers {
		ip, _, _ := strings.Cut(ep.IPv4Address, "/")
		m[id] = ip
	}
	return m, nil
}

// SwarmState is the node's swarm membership: "inactive", "active", "pending", ...
func (d *Docker) SwarmState(ctx context.Context) (string, error) {
	var out struct {
		Swarm struct {
			LocalNodeState string `json:"LocalNodeState"`
		} `json:"Swarm"`
	}
	err := d.get(ctx, "/info", &out)
	return out.Swarm.LocalNodeState, err
}

// NetworkExists reports whether a network of that name or ID exists.
func (d *Docker) NetworkExists(ctx context.Context, name string) bool {
	var out struct{}
	return d.get(ctx, "/networks/"+url.PathEscape(name), &out) == nil
}

// ImageHealthcheck returns the image's HEALTHCHECK test, or nil when it has none.
func (d *Docker) ImageHealthcheck(ctx context.Context, image string) ([]string, error) {
	var out struct {
		Config struct {
			Healthcheck *struct {
				Test []string `json:"Test"`
			} `json:"Healthcheck"`
		} `json:"Config"`
	}
	if err := d.get(ctx, "/images/"+image+"/json", &out); err != nil {
		return nil, err
	}
	if out.Config.Healthcheck == nil {
		return nil, nil
	}
	return out.Config.Healthcheck.Test, nil
}

// Network is the part of a network listing the benchmarks read.
type Network struct {
	ID   string `json:"Id"`
	Name string `json:"Name"`
}

// Networks lists networks matching the filters (Engine API filter syntax, e.g.
// {"label": {"k=v"}}).
func (d *Docker) Networks(ctx context.Context, filters map[string][]string) ([]Network, error) {
	f, _ := json.Marshal(filters)
	var out []Network
	err := d.get(ctx, "/networks?filters="+url.QueryEscape(string(f)), &out)
	return out, err
}

// Event is one message of the engine's event stream (GET /events).
type Event struct {
	Type   string `json:"Type"`   // "container", "network", ...
	Action string `json:"Action"` // "start", "die", ...
	Actor  struct {
		ID         string            `json:"ID"`
		Attributes map[string]string `json:"Attributes"` // a container's labels, "name", "image", ...
	} `json:"Actor"`
	TimeNano int64 `json:"timeNano"` // when the engine logged it
	// Received is when the harness read it off the stream (not part of the message).
	Received time.Time `json:"-"`
}

// Time is when the engine logged the event.
func (e Event) Time() time.Time { return time.Unix(0, e.TimeNano) }

// EventStream is a subscription to the engine's events. C is closed when the stream
// ends: the context was cancelled, or the engine or the decoding failed (Err says).
type EventStream struct {
	C   <-chan Event
	err error // set before C is closed
}

// Err is why the stream ended; read it only after C is closed.
func (s *EventStream) Err() error { return s.err }

// Events subscribes to the engine's events matching the filters (Engine API syntax,
// e.g. {"type": {"container"}, "event": {"start"}, "label": {"k=v"}}; several labels
// must all match), starting from since.
//
// The engine answers the request's headers before it registers the subscription, so
// receiving them does not prove that nothing will be missed; since closes that gap: the
// engine first replays what it logged from since on (it keeps the last 256 events), then
// streams. Callers pass a time taken before the action whose events they expect.
// Cancelling ctx ends the stream.
func (d *Docker) Events(ctx context.Context, since time.Time, filters map[string][]string) (*EventStream, error) {
	f, _ := json.Marshal(filters)
	q := url.Values{}
	q.Set("since", fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()))
	q.Set("filters", string(f))
	path := "/events?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.stream.Do(req)
	if err != nil {
		return nil, fmt.Errorf("engine: GET /events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("engine: GET /events: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	c := make(chan Event, 64)
	s := &EventStream{C: c}
	go func() {
		defer close(c)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var e Event
			if err := dec.Decode(&e); err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				s.err = fmt.Errorf("engine: GET /events: %w", err)
				return
			}
			e.Received = time.Now()
			select {
			case c <- e:
			case <-ctx.Done():
				s.err = ctx.Err()
				return
			}
		}
	}()
	return s, nil
}
