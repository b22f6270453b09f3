package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Project is the desired state of one stack: what `tend up` hands the daemon.
// It is plain data (JSON round-trips) so the store can version it and the API can carry it.
type Project struct {
	Name     string    `json:"name"`
	Services []Service `json:"services"` // sorted by name
	Networks []Network `json:"networks"` // sorted by key; always holds "default" when a service uses it
	Volumes  []Volume  `json:"volumes"`  // sorted by key
}

// Service is one compose service as tend runs it.
type Service struct {
	Name string `json:"name"`
	// ContainerName is compose's container_name: the name of the service's one
	// replica instead of project-service-1.
	ContainerName string            `json:"container_name,omitempty"`
	Image         string            `json:"image"`
	Build         *Build            `json:"build,omitempty"`       // nil: the image is not tend's to build (build.go)
	Command       []string          `json:"command,omitempty"`     // nil keeps the image's CMD
	Entrypoint    []string          `json:"entrypoint,omitempty"`  // nil keeps the image's ENTRYPOINT
	Environment   map[string]string `json:"environment,omitempty"` // env_file merged under environment
	Ports         []Port            `json:"ports,omitempty"`
	Mounts        []Mount           `json:"mounts,omitempty"`
	Networks      []NetworkAttach   `json:"networks,omitempty"`
	// NetworkMode is compose's network_mode: "host", "none", "service:NAME" (the
	// network of NAME's replica 1) or "container:NAME"; empty: tend's networks.
	NetworkMode     string            `json:"network_mode,omitempty"`
	Healthcheck     *Healthcheck      `json:"healthcheck,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	StopGracePeriod time.Duration     `json:"stop_grace_period,omitempty"` // 0 means the engine default (10s)
	StopSignal      string            `json:"stop_signal,omitempty"`
	Options                           // user, limits, secrets, ... (options.go); inline in JSON
	Replicas        int               `json:"replicas"`
	Restart         RestartPolicy     `json:"restart"`
	DependsOn       []Dependency      `json:"depends_on,omitempty"` // sorted by service
	Rollout         Rollout           `json:"rollout,omitzero"`     // deploy.update_config and rollback_config (update.go)
	Tend            Extension         `json:"x-tend"`
}

// Port publishes a container port on the host.
type Port struct {
	HostIP   string `json:"host_ip,omitempty"`
	HostPort uint16 `json:"host_port,omitempty"` // 0: the engine picks one
	// HostPortEnd, when set, makes HostPort the start of a range ("8000-8010:80"):
	// tend's proxy listens on the first free port of it (tcp), the engine picks
	// one per replica (udp, sctp).
	HostPortEnd   uint16 `json:"host_port_end,omitempty"`
	ContainerPort uint16 `json:"container_port"`
	Protocol      string `json:"protocol"` // tcp, udp or sctp
	// AppProtocol is compose's app_protocol (long syntax): "http", "h2c" or
	// "grpc" make tend's proxy speak HTTP on this port; anything else is TCP.
	AppProtocol string `json:"app_protocol,omitempty"`
}

// MountType says what a Mount's Source names.
type MountType string

const (
	MountVolume MountType = "volume" // Source is a key of Project.Volumes; empty Source is an anonymous volume
	MountBind   MountType = "bind"   // Source is an absolute host path
)

// Mount is a volume or bind mount of a service.
type Mount struct {
	Type     MountType `json:"type"`
	Source   string    `json:"source,omitempty"`
	Target   string    `json:"target"`
	ReadOnly bool      `json:"read_only,omitempty"`
	// SELinux relabels a bind's source for the container: "z" shared, "Z" private
	// (compose's :z and :Z). The engine ignores it on a host without SELinux.
	SELinux string `json:"selinux,omitempty"`
}

// NetworkAttach joins a service to one of the project's networks.
type NetworkAttach struct {
	Network string   `json:"network"` // key of Project.Networks
	Aliases []string `json:"aliases,omitempty"`
	// IPv4Address and IPv6Address are compose's fixed addresses on the network
	// (a service of one replica, on a network with an ipam subnet).
	IPv4Address string `json:"ipv4_address,omitempty"`
	IPv6Address string `json:"ipv6_address,omitempty"`
}

// Healthcheck is the compose healthcheck, run by the engine.
type Healthcheck struct {
	Disable     bool          `json:"disable,omitempty"`
	Test        []string      `json:"test,omitempty"` // exec form ["CMD", ...] or ["CMD-SHELL", "..."]
	Interval    time.Duration `json:"interval,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty"`
	StartPeriod time.Duration `json:"start_period,omitempty"`
	Retries     int           `json:"retries,omitempty"`
}

// Condition says which exits a service is restarted after.
type Condition string

const (
	RestartAny       Condition = "any"        // every exit; the default
	RestartOnFailure Condition = "on-failure" // non-zero exits only
	RestartNone      Condition = "none"       // never: a one-shot job
)

// RestartPolicy is deploy.restart_policy (or the restart key) with tend's backoff.
type RestartPolicy struct {
	Condition   Condition     `json:"condition"`
	Delay       time.Duration `json:"delay,omitempty"`        // compose delay: the least wait before a restart after the first
	MaxAttempts int           `json:"max_attempts,omitempty"` // 0: unlimited
	Window      time.Duration `json:"window,omitempty"`       // restarts older than this do not count toward MaxAttempts; 0: the whole crash streak
}

// DependencyCondition is what a dependent waits for at start-up.
type DependencyCondition string

const (
	ServiceStarted               DependencyCondition = "service_started"
	ServiceHealthy               DependencyCondition = "service_healthy"
	ServiceCompletedSuccessfully DependencyCondition = "service_completed_successfully"
)

// Dependency is one depends_on entry.
type Dependency struct {
	Service   string              `json:"service"`
	Condition DependencyCondition `json:"condition"`
	Restart   bool                `json:"restart,omitempty"`
	Required  bool                `json:"required"`
}

// Network is a project network; tend creates it unless External.
type Network struct {
	Key        string            `json:"key"`  // the name in the compose file
	Name       string            `json:"name"` // the engine's name: <project>_<key> unless set
	External   bool              `json:"external,omitempty"`
	Driver     string            `json:"driver,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	DriverOpts map[string]string `json:"driver_opts,omitempty"`
	// IPAM is compose's ipam: the network's subnets, which fixed addresses need.
	IPAM *IPAM `json:"ipam,omitempty"`
	// IPv6 is compose's enable_ipv6. A network with an IPv6 subnet has IPv6 too.
	IPv6 bool `json:"enable_ipv6,omitempty"`
}

// IPAM is how the engine hands out a network's addresses.
type IPAM struct {
	Driver string     `json:"driver,omitempty"` // empty: the engine's default
	Pools  []IPAMPool `json:"config,omitempty"`
}

// IPAMPool is one subnet of a network.
type IPAMPool struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway,omitempty"`
	IPRange string `json:"ip_range,omitempty"`
}

// Volume is a project named volume; tend creates it unless External.
type Volume struct {
	Key        string            `json:"key"`
	Name       string            `json:"name"` // the engine's name: <project>_<key> unless set
	External   bool              `json:"external,omitempty"`
	Driver     string            `json:"driver,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	DriverOpts map[string]string `json:"driver_opts,omitempty"`
}

// ExtensionKey is the service extension tend reads its own settings from.
const ExtensionKey = "x-tend"

// Extension is a service's `x-tend` block: what compose cannot say.
type Extension struct {
	Backoff   Backoff   `json:"backoff"`
	Liveness  *Probe    `json:"liveness,omitempty"`  // failing: the replica is replaced
	Readiness *Probe    `json:"readiness,omitempty"` // failing: out of rotation; nil: the liveness probe
	Logs      []LogRule `json:"logs,omitempty"`      // log patterns that heal, in file order
	// Idempotent lists HTTP methods besides GET, HEAD and OPTIONS that the
	// proxy may send twice (a retry on another replica after a 502, 503
	// or a broken connection).
	Idempotent []string `json:"idempotent,omitempty"`
	// Autoscale: tend chooses the replica count within bounds (autoscale.go); nil: deploy.replicas.
	Autoscale *Autoscale `json:"autoscale,omitempty"`
	// Quarantine, Fallback and Breaker isolate a service that cannot be
	// repaired or answers badly (isolation.go).
	Quarantine Quarantine `json:"quarantine,omitzero"`
	Fallback   Fallback   `json:"fallback,omitzero"`
	Breaker    Breaker    `json:"breaker,omitzero"`
}

// Backoff shapes crash-loop restarts: the first restart of a streak is immediate,
// the next waits max(Initial, RestartPolicy.Delay), doubling up to Max. A replica
// that stays up for ResetAfter ends the streak.
type Backoff struct {
	Initial    time.Duration `json:"initial"`
	Max        time.Duration `json:"max"`
	ResetAfter time.Duration `json:"reset_after"`
}

// Defaults of the x-tend backoff, close to the Docker engine's restart manager
// but with an immediate first restart.
const (
	DefaultBackoffInitial    = 500 * time.Millisecond
	DefaultBackoffMax        = 60 * time.Second
	DefaultBackoffResetAfter = 10 * time.Second
)

// NetworkName is the engine's name of the project network keyed key in
// the compose file: its declared name, or <project>_<key>.
func (p *Project) NetworkName(key string) string {
	for _, n := range p.Networks {
		if n.Key == key {
			return n.Name
		}
	}
	return p.Name + "_" + key
}

// StopFirst says a replica of s cannot run next to its replacement: it holds
// a fixed address, or the host's ports (network_mode: host). tend then replaces
// a sick one stop-first.
func (s *Service) StopFirst() bool { return s.StopFirstReason() != "" }

// StopFirstReason names what a replica of s holds alone, or "".
func (s *Service) StopFirstReason() string {
	if s.NetworkMode == "host" {
		return "host network ports"
	}
	for _, a := range s.Networks {
		if a.IPv4Address != "" || a.IPv6Address != "" {
			return "fixed address on " + a.Network
		}
	}
	return ""
}

// Network returns the network keyed key, or nil.
func (p *Project) Network(key string) *Network {
	for i := range p.Networks {
		if p.Networks[i].Key == key {
			return &p.Networks[i]
		}
	}
	return nil
}

// Service returns the named service, or false.
func (p *Project) Service(name string) (*Service, bool) {
	for i := range p.Services {
		if p.Services[i].Name == name {
			return &p.Services[i], true
		}
	}
	return nil, false
}

// Hash identifies what a replica of s is made from: a container whose hash label
// differs runs an old spec and is replaced. Replicas, restart policy, dependencies,
// update settings and x-tend change how tend supervises, not what runs, so they are left out.
func (s Service) Hash() string {
	runtime := s
	runtime.Replicas = 0
	runtime.Restart = RestartPolicy{}
	runtime.DependsOn = nil
	runtime.Rollout = Rollout{}
	runtime.Tend = Extension{}
	runtime.Build = s.Build.hashed()
	b, err := json.Marshal(runtime)
	if err != nil {
		panic("spec: hash: " + err.Error()) // plain data always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
