// Package runtime is the container runtime in tend's terms: the one interface
// the supervisor drives, and the facts it observes. It holds no I/O itself;
// runtime/docker implements it on the Docker Engine and runtime/fake in memory.
package runtime

import (
	"context"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// Labels tend puts on everything it creates: its ownership record.
const (
	LabelProject = "io.tend.project"
	LabelService = "io.tend.service"
	LabelSlot    = "io.tend.slot"
	LabelHash    = "io.tend.hash"
)

// State is a container's lifecycle state as the engine reports it.
type State string

const (
	Created    State = "created" // made but never started
	Running    State = "running"
	Exited     State = "exited"
	Paused     State = "paused"
	Restarting State = "restarting"
	Removing   State = "removing"
	Dead       State = "dead"
)

// Health is the engine's health-check verdict; empty when there is no check.
type Health string

const (
	HealthNone      Health = ""
	HealthStarting  Health = "starting"
	HealthHealthy   Health = "healthy"
	HealthUnhealthy Health = "unhealthy"
)

// Container is one observed container that carries tend's labels.
type Container struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Project string `json:"project"`
	Service string `json:"service"`
	Slot    int    `json:"slot"`
	Hash    string `json:"hash"`
	State   State  `json:"state"`
	Health  Health `json:"health,omitempty"`
	// HealthFailing counts the engine's health checks that failed in a row
	// since the last that passed: a healthy container with failures is on
	// its way to unhealthy.
	HealthFailing int `json:"health_failing,omitempty"`
	// HealthOutput is what the engine's last health check printed, trimmed.
	HealthOutput string `json:"health_output,omitempty"`
	IP           string `json:"ip,omitempty"` // the address on its first network, while it runs
	// Published are, in a cluster, its TCP ports as other nodes reach them
	// (the node's address and a port the engine picked), by container port.
	Published map[uint16]netip.AddrPort `json:"published,omitempty"`
	// NetworkOf is the container whose network it shares (network_mode
	// service:NAME or container:NAME), by ID.
	NetworkOf string `json:"network_of,omitempty"`
	ExitCode  int    `json:"exit_code"`
	// OOMKilled: the engine says the kernel's OOM killer killed a process of
	// the container since the engine last started it (Docker's State.OOMKilled).
	OOMKilled bool `json:"oom_killed,omitempty"`
	// Held: the command ended inside a container that still runs, and the
	// runtime holds the exit for tend's verdict (tend's shim, see Release);
	// ExitCode is then the command's own, not the container's.
	Held       bool      `json:"held,omitempty"`
	Created    time.Time `json:"created"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// Event is a change the engine reports about a tend container. Events only wake
// the supervisor, which then observes the whole state; so an Event carries just
// enough to log and route it.
type Event struct {
	Project   string
	Service   string
	Container string
	Action    string // the engine's action, e.g. "die", "start", "destroy"
	Signal    int    // a "kill" event's signal number (9 SIGKILL, 1 SIGHUP, ...); 0: not said
}

// LogOptions say which of a container's output Logs reads.
type LogOptions struct {
	Since  time.Time // zero: from its start
	Tail   int       // the last Tail lines only; 0: all
	Follow bool      // go on with what it prints next
}

// Runtime runs a project's containers, networks and volumes.
type Runtime interface {
	// List returns the containers labelled with project, or with any project when it is "".
	List(ctx context.Context, project string) ([]Container, error)
	// Create makes (but does not start) replica r of svc and returns its ID.
	Create(ctx context.Context, p *spec.Project, svc *spec.Service, r Replica) (string, error)
	// Rename gives a container a new name.
	Rename(ctx context.Context, id, name string) error
	Start(ctx context.Context, id string) error
	// Stop sends the container's stop signal and kills it after grace.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove removes a container, killing it if it still runs; a missing container is not an error.
	Remove(ctx context.Context, id string) error
	// Release lets a container whose process exited, and whose exit the
	// runtime holds for tend's verdict, end as exited (tend decided not to
	// restart it). For any other container it does nothing.
	Release(ctx context.Context, id string) error
	// Unpause thaws a paused container; one that is not paused is not an error.
	Unpause(ctx context.Context, id string) error

	// Exec runs cmd inside a running container, without a shell, and returns
	// its exit code and combined output. It gives up when ctx ends.
	Exec(ctx context.Context, id string, cmd []string) (ExecResult, error)
	// CPUTime is the CPU time a running container has used since it started,
	// and when the engine read it: two readings give its cores in use.
	CPUTime(ctx context.Context, id string) (used time.Duration, at time.Time, err error)
	// Logs reads a container's output (stdout and stderr, demultiplexed)
	// as o says; following, until the container stops, ctx ends or the
	// reader is closed.
	Logs(ctx context.Context, id string, o LogOptions) (io.ReadCloser, error)

	EnsureNetwork(ctx context.Context, project string, n spec.Network) error
	// NetworkGateway is the host's address on a network (its gateway), or
	// "" when it has none (an internal or non-bridge network).
	NetworkGateway(ctx context.Context, name string) (string, error)
	RemoveNetwork(ctx context.Context, n spec.Network) error
	EnsureVolume(ctx context.Context, project string, v spec.Volume) error
	RemoveVolume(ctx context.Context, v spec.Volume) error

	// ImageID returns the ID of the image ref names, or "" when the engine has none.
	ImageID(ctx context.Context, ref string) (string, error)
	// ImageHealthcheck says whether the image ref defines a HEALTHCHECK, and
	// whether the engine has the image at all.
	ImageHealthcheck(ctx context.Context, ref string) (has, found bool, err error)
	// Build builds b into an image tagged image, writes the build's output to
	// progress as it comes, and returns the image's ID. A build that the engine
	// ran and that failed is a *BuildError.
	Build(ctx context.Context, image string, b spec.Build, progress io.Writer) (string, error)

	// Events streams engine events about tend containers until ctx ends or the
	// stream breaks; the error channel then yields why (nil when ctx ended).
	Events(ctx context.Context) (<-chan Event, <-chan error)
}

// Replica says which container of a service to make: its slot, its name,
// and what tend adds beside the spec (not part of the spec's hash).
type Replica struct {
	Slot int
	Name string
	// Hosts are added to the container's /etc/hosts: service names that
	// resolve to tend's proxy on the network's gateway (in-stack calls).
	Hosts []spec.ExtraHost
}

// ExecResult is how a command run in a container ended.
type ExecResult struct {
	ExitCode int
	Output   string
}

// ContainerName is the deterministic name of a replica. The engine refuses a
// second container of the same name, which is what makes adoption after a crash
// of tend safe: a slot can never be created twice.
func ContainerName(project, service string, slot int) string {
	return project + "-" + service + "-" + strconv.Itoa(slot)
}

// ReplicaName is the name of a replica of svc: the file's container_name where it
// sets one (a service of one replica), else ContainerName.
func ReplicaName(project string, svc *spec.Service, slot int) string {
	if svc.ContainerName != "" {
		return svc.ContainerName
	}
	return ContainerName(project, svc.Name, slot)
}

// SurgeName is the name of a replica that starts next to a slot's sick one and
// takes over its name once the sick one is gone. Like ReplicaName, it cannot
// be created twice.
func SurgeName(project string, svc *spec.Service, slot int) string {
	return ReplicaName(project, svc, slot) + "-next"
}
