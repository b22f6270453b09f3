package docker

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// Docker is a runtime.Runtime on one Docker engine.
type Docker struct {
	c         *client.Client
	publishOn netip.Addr // Config.PublishOn

	// inspected caches what List learned by inspecting containers, so a pass
	// over a steady stack costs one list call. An engine event about a
	// container drops its entry, except a die, which updates it (noteExit).
	mu        sync.Mutex
	inspected map[string]cached

	shim       ShimConfig
	shimBinary string               // the copy of tend's binary replicas mount
	holds      map[string]*held     // exits shims wait on a verdict for, by container
	runStarted map[string]time.Time // when a shim last started its command, by container
	oomed      map[string]bool      // containers the engine reported an OOM kill in since it started them
	checks     map[string]bool      // execs that run a health check, by exec ID, until they end
	shimEvents chan runtime.Event   // shims' reports, merged into Events
}

type cached struct {
	state  container.ContainerState
	health runtime.Health
	c      runtime.Container
	token  string // the shim's token, from the container's labels
	check  string // the health check's command as exec events name it; "" without one
	// died: learned from a die event. The engine's list keeps saying
	// "running" until its clean-up of the container is done; the event is newer.
	died bool
}

var _ runtime.Runtime = (*Docker)(nil)

// Config configures the adapter; the zero value is a plain adapter.
type Config struct {
	// Shim, when set, runs every replica's command under tend's shim, which
	// restarts a crashed process in place (see internal/shim).
	Shim ShimConfig
	// PublishOn, when valid, also publishes each replica's TCP ports on this
	// address at ports the engine picks: in a cluster the other nodes'
	// proxies reach the replica there (runtime.Container.Published).
	PublishOn netip.Addr
}

// New connects to the engine named by the environment (DOCKER_HOST, or the
// local socket) and negotiates the API version.
func New(ctx context.Context, cfg Config) (*Docker, error) {
	d := &Docker{inspected: map[string]cached{}, shim: cfg.Shim, publishOn: cfg.PublishOn, holds: map[string]*held{},
		runStarted: map[string]time.Time{}, oomed: map[string]bool{}, shimEvents: make(chan runtime.Event, 64), checks: map[string]bool{}}
	if cfg.Shim.Dir != "" {
		bin, err := prepareShim(cfg.Shim)
		if err != nil {
			return nil, err
		}
		d.shimBinary = bin
	}
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker: connect: %w", err)
	}
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		return nil, fmt.Errorf("docker: ping engine: %w", err)
	}
	d.c = c
	return d, nil
}

// Close releases the client's connections.
func (d *Docker) Close() error { return d.c.Close() }

// APIVersion is the API version agreed with the engine.
func (d *Docker) APIVersion() string { return d.c.ClientVersion() }

// RootDir is the engine's data root (docker info's DockerRootDir): the disk
// whose free space a node of a cluster reports.
func (d *Docker) RootDir(ctx context.Context) (string, error) {
	res, err := d.c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", fmt.Errorf("docker: info: %w", err)
	}
	return res.Info.DockerRootDir, nil
}

func projectFilter(project string) client.Filters {
	if project == "" {
		return client.Filters{}.Add("label", runtime.LabelProject)
	}
	return client.Filters{}.Add("label", runtime.LabelProject+"="+project)
}

func (d *Docker) List(ctx context.Context, project string) ([]runtime.Container, error) {
	res, err := d.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: projectFilter(project)})
	if err != nil {
		return nil, fmt.Errorf("docker: list containers: %w", err)
	}
	out := make([]runtime.Container, 0, len(res.Items))
	for _, s := range res.Items {
		if c, ok := d.cached(s.ID, s.State, summaryHealth(s)); ok {
			out = append(out, c)
			continue
		}
		c, err := d.inspect(ctx, s.ID)
		if cerrdefs.IsNotFound(err) {
			continue // removed since the list
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// cached returns what is known of a container if it still holds for the
// state (and health) the list reports.
func (d *Docker) cached(id string, state container.ContainerState, health runtime.Health) (runtime.Container, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.inspected[id]
	switch {
	case !ok:
		return runtime.Container{}, false
	case e.died && (state == container.StateRunning || state == container.StateExited):
		return e.c, true
	case e.state != state || (state == container.StateRunning && e.health != health):
		return runtime.Container{}, false
	}
	return e.c, true
}

func (d *Docker) inspect(ctx context.Context, id string) (runtime.Container, error) {
	res, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return runtime.Container{}, fmt.Errorf("docker: inspect %s: %w", short(id), err)
	}
	in := res.Container
	c := runtime.Container{
		ID:      in.ID,
		Name:    strings.TrimPrefix(in.Name, "/"),
		Created: parseTime(in.Created),
	}
	if in.Config != nil {
		c.Project = in.Config.Labels[runtime.LabelProject]
		c.Service = in.Config.Labels[runtime.LabelService]
		c.Slot, _ = strconv.Atoi(in.Config.Labels[runtime.LabelSlot])
		c.Hash = in.Config.Labels[runtime.LabelHash]
	}
	if st := in.State; st != nil {
		c.State = runtime.State(st.Status)
		c.ExitCode = st.ExitCode
		c.StartedAt = parseTime(st.StartedAt)
		c.FinishedAt = parseTime(st.FinishedAt)
		if c.State == runtime.Exited || c.State == runtime.Dead {
			c.OOMKilled = st.OOMKilled
		}
		if st.Health != nil && st.Health.Status != container.NoHealthcheck {
			c.Health = runtime.Health(st.Health.Status)
			if n := len(st.Health.Log); n > 0 && st.Health.Log[n-1] != nil {
				c.HealthOutput = oneLine(st.Health.Log[n-1].Output, 300)
			}
			c.HealthFailing = st.Health.FailingStreak
		}
	}
	if in.HostConfig != nil && in.HostConfig.NetworkMode.IsContainer() {
		c.NetworkOf = in.HostConfig.NetworkMode.ConnectedContainer()
	}
	if c.State == runtime.Running {
		c.IP = d.address(ctx, in, c.NetworkOf)
		if d.publishOn.IsValid() && in.NetworkSettings != nil {
			c.Published = published(in.NetworkSettings.Ports, d.publishOn)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e := cached{state: container.ContainerState(c.State), health: c.Health, c: c}
	if in.Config != nil {
		e.token = in.Config.Labels[LabelShim]
		e.check = checkCommand(in.Config.Healthcheck)
	}
	if t, ok := d.runStarted[id]; ok && (c.State == runtime.Running || c.State == runtime.Exited) {
		// The shim ran the command again since the engine started the
		// container: the run that is going (or that ended) began then.
		e.c.StartedAt = t
	}
	if h := d.holds[id]; h != nil && c.State == runtime.Running {
		e = heldEntry(e, h)
	}
	d.inspected[id] = e
	return e.c, nil
}

// summaryHealth reads the health from a list entry: a field on recent engines,
// a suffix of the status text ("Up 3 seconds (healthy)") on older ones.
func summaryHealth(s container.Summary) runtime.Health {
	if s.Health != nil {
		if s.Health.Status == container.NoHealthcheck {
			return runtime.HealthNone
		}
		return runtime.Health(s.Health.Status)
	}
	switch {
	case strings.HasSuffix(s.Status, "(healthy)"):
		return runtime.HealthHealthy
	case strings.HasSuffix(s.Status, "(unhealthy)"):
		return runtime.HealthUnhealthy
	case strings.HasSuffix(s.Status, "(health: starting)"):
		return runtime.HealthStarting
	}
	return runtime.HealthNone
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 2000 { // the engine writes 0001-01-01 for "never"
		return time.Time{}
	}
	return t
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (d *Docker) Start(ctx context.Context, id string) error {
	if d.answer(id, true) {
		return nil // the shim runs the command again: no engine call
	}
	d.forget(id)
	if _, err := d.c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		err = fmt.Errorf("docker: start %s: %w", short(id), err)
		if gone(err) {
			return errs.Wrap(errs.NotFound, err)
		}
		return err
	}
	return nil
}

// gone tells an error about a container that no longer exists, or is being
// removed (`docker rm -f` sends die before destroy, so a restart can race it).
func gone(err error) bool {
	return cerrdefs.IsNotFound(err) || strings.Contains(err.Error(), "marked for removal")
}

func (d *Docker) Stop(ctx context.Context, id string, grace time.Duration) error {
	d.answer(id, false)
	d.forget(id)
	secs := int((grace + time.Second - 1) / time.Second)
	if _, err := d.c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: stop %s: %w", short(id), err)
	}
	return nil
}

func (d *Docker) Remove(ctx context.Context, id string) error {
	d.answer(id, false)
	d.forget(id)
	// Volumes stay: a replica's data is never tend's to lose.
	_, err := d.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: remove %s: %w", short(id), err)
	}
	return nil
}

// publishTCP binds svc's published TCP ports on addr at ports the engine picks.
func publishTCP(opts *client.ContainerCreateOptions, svc *spec.Service, addr netip.Addr) {
	for _, pt := range svc.Ports {
		port, ok := network.PortFrom(pt.ContainerPort, network.TCP)
		if pt.Protocol != "tcp" || !ok {
			continue
		}
		if opts.Config.ExposedPorts == nil {
			opts.Config.ExposedPorts = network.PortSet{}
		}
		if opts.HostConfig.PortBindings == nil {
			opts.HostConfig.PortBindings = network.PortMap{}
		}
		opts.Config.ExposedPorts[port] = struct{}{}
		opts.HostConfig.PortBindings[port] = []network.PortBinding{{HostIP: addr}}
	}
}

// published are the TCP ports bound on addr, by container port.
func published(ports network.PortMap, addr netip.Addr) map[uint16]netip.AddrPort {
	out := map[uint16]netip.AddrPort{}
	for p, bs := range ports {
		if p.Proto() != network.TCP {
			continue
		}
		for _, b := range bs {
			n, err := strconv.ParseUint(b.HostPort, 10, 16)
			if err == nil && (b.HostIP == addr || !b.HostIP.IsValid() || b.HostIP.IsUnspecified()) {
				out[p.Num()] = netip.AddrPortFrom(addr, uint16(n))
			}
		}
	}
	return out
}

func (d *Docker) Create(ctx context.Context, p *spec.Project, svc *spec.Service, r runtime.Replica) (string, error) {
	name := r.Name
	opts, extra, err := createOptions(p, svc, r.Slot)
	opts.Name = name
	if err == nil && d.publishOn.IsValid() {
		publishTCP(&opts, svc, d.publishOn)
	}
	for _, h := range r.Hosts {
		opts.HostConfig.ExtraHosts = append(opts.HostConfig.ExtraHosts, h.Host+":"+h.IP)
	}
	if err != nil {
		return "", fmt.Errorf("docker: create %s: %w", name, err)
	}
	if d.shimBinary != "" {
		if err := d.wrap(ctx, &opts, svc); err != nil {
			return "", fmt.Errorf("docker: create %s: %w", name, err)
		}
	}
	res, err := d.c.ContainerCreate(ctx, opts)
	if err != nil {
		return "", fmt.Errorf("docker: create %s: %w", name, err)
	}
	// Engines before API 1.44 take one network at create; the rest join before start.
	for net, ep := range extra {
		if _, err := d.c.NetworkConnect(ctx, net, client.NetworkConnectOptions{Container: res.ID, EndpointConfig: ep}); err != nil {
			return res.ID, fmt.Errorf("docker: connect %s to %s: %w", name, net, err)
		}
	}
	return res.ID, nil
}

// Rename gives a container a new name; its network aliases stay.
func (d *Docker) Rename(ctx context.Context, id, name string) error {
	d.forget(id)
	defer d.forget(id) // a List during the call may have cached the old name
	if _, err := d.c.ContainerRename(ctx, id, client.ContainerRenameOptions{NewName: name}); err != nil {
		if strings.Contains(err.Error(), "same name as its current name") {
			return nil // done already: a pass saw the old name
		}
		err = fmt.Errorf("docker: rename %s to %s: %w", short(id), name, err)
		if gone(err) {
			return errs.Wrap(errs.NotFound, err)
		}
		return err
	}
	return nil
}

// address is where tend's probes and proxy reach a running container: its first
// network's address; on the host's network, the loopback; in another container's
// network, that container's address.
func (d *Docker) address(ctx context.Context, in container.InspectResponse, networkOf string) string {
	switch {
	case in.HostConfig != nil && in.HostConfig.NetworkMode.IsHost():
		return "127.0.0.1"
	case networkOf != "":
		res, err := d.c.ContainerInspect(ctx, networkOf, client.ContainerInspectOptions{})
		if err != nil {
			return ""
		}
		return firstIP(res.Container)
	}
	return firstIP(in)
}

// firstIP is a running container's address on the network it joined first
// (its network mode), or on any network when that one has none.
func firstIP(in container.InspectResponse) string {
	if in.NetworkSettings == nil {
		return ""
	}
	nets := in.NetworkSettings.Networks
	if in.HostConfig != nil {
		if ep := nets[string(in.HostConfig.NetworkMode)]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	for _, name := range slices.Sorted(maps.Keys(nets)) {
		if ep := nets[name]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	return ""
}

// oneLine trims s to one line of at most n bytes, for the journal and `tend ps`.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
