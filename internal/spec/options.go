package spec

import "fmt"

// Options are the settings of a service's containers beyond image, command, ports,
// mounts and networks: identity, privileges, files, limits and logs. Service embeds
// it, so its fields sit inline in Service's JSON. Every field is omitted when empty,
// which keeps the hash of a service that sets none of them what it always was.
type Options struct {
	User       string      `json:"user,omitempty"`        // user[:group], a name or an id; empty: the image's
	WorkingDir string      `json:"working_dir,omitempty"` // an absolute path; empty: the image's
	Hostname   string      `json:"hostname,omitempty"`    // shared by all replicas, as in compose
	ReadOnly   bool        `json:"read_only,omitempty"`   // the root filesystem
	Init       bool        `json:"init,omitempty"`        // run the engine's init as PID 1 (reaps zombies, forwards signals)
	CapAdd     []string    `json:"cap_add,omitempty"`     // kernel capabilities, as the engine takes them (NET_ADMIN, ALL)
	CapDrop    []string    `json:"cap_drop,omitempty"`
	ExtraHosts []ExtraHost `json:"extra_hosts,omitempty"` // sorted by host
	DNS        []string    `json:"dns,omitempty"`         // name server addresses
	Tmpfs      []Tmpfs     `json:"tmpfs,omitempty"`       // the tmpfs key first, then tmpfs volumes, in file order
	Secrets    []FileMount `json:"secrets,omitempty"`     // in file order
	Configs    []FileMount `json:"configs,omitempty"`     // in file order
	Ulimits    []Ulimit    `json:"ulimits,omitempty"`     // sorted by name
	Limits     Limits      `json:"limits,omitzero"`
	Logging    *Logging    `json:"logging,omitempty"` // nil: the engine's default driver
}

// ExtraHost is a line added to the container's /etc/hosts.
type ExtraHost struct {
	Host string `json:"host"`
	IP   string `json:"ip"` // an address, or host-gateway (the engine's address for the host)
}

// HostGateway is the extra_hosts address the engine replaces with the host's.
const HostGateway = "host-gateway"

// Tmpfs is a memory-backed mount, empty at every start: from the tmpfs key or a
// volume of type tmpfs.
type Tmpfs struct {
	Target  string `json:"target"`
	Options string `json:"options,omitempty"` // mount options as the engine takes them: size=64m,mode=1777,noexec
}

// FileMount is a secret or config: a host file bind-mounted read-only. One whose
// value comes from the environment or inline content (compose's environment: and
// content:) holds it in Content while the CLI has it: Content never leaves the
// CLI (no JSON), which writes it to Source, a file on a tmpfs named by its digest,
// before handing the project over. tend keeps the path, never the value.
// It carries the file's path, never its content, so no secret value reaches the
// store, the API or the journal.
type FileMount struct {
	Name   string `json:"name"`   // the key under top-level secrets or configs
	Source string `json:"source"` // the absolute path of the file on the host
	Target string `json:"target"` // the absolute path in the container
	// From says where a value that is not a file of the user's came from:
	// "environment VAR" or "content"; empty for a file.
	From    string `json:"from,omitempty"`
	Content []byte `json:"-"`
}

// Ulimit is a resource limit of the container's processes (setrlimit).
type Ulimit struct {
	Name string `json:"name"` // nofile, nproc, ... without RLIMIT_
	Soft int64  `json:"soft"` // -1: unlimited
	Hard int64  `json:"hard"` // -1: unlimited
}

// Limits are deploy.resources.limits (or cpus, mem_limit and pids_limit). Zero
// means no limit.
type Limits struct {
	CPUs   float64 `json:"cpus,omitempty"`   // in CPUs: 0.5 is half of one
	Memory Bytes   `json:"memory,omitempty"` // at least MinMemory when set
	Pids   int64   `json:"pids,omitempty"`   // -1: unlimited
}

// MinMemory is the smallest memory limit the engine accepts.
const MinMemory Bytes = 6 << 20

// Logging picks the engine's log driver for the containers.
type Logging struct {
	Driver  string            `json:"driver,omitempty"` // empty: the engine's default
	Options map[string]string `json:"options,omitempty"`
}

// Bytes is a size in bytes. It is a plain number in JSON; String renders it in
// the largest binary unit that divides it exactly, so nothing is rounded.
type Bytes int64

// String renders b as 512MiB, 1GiB, 1536KiB or 1000B.
func (b Bytes) String() string {
	for _, u := range []struct {
		suffix string
		size   Bytes
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && b%u.size == 0 {
			return fmt.Sprintf("%d%s", b/u.size, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", int64(b))
}
