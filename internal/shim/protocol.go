package shim

import "time"

// Paths and variables inside a replica's container.
const (
	Binary    = "/.tend/tend" // tend's static binary, mounted read-only
	SocketDir = "/.tend/run"  // a host directory holding tend's control socket
	Socket    = SocketDir + "/shim.sock"
	EnvToken  = "TEND_SHIM_TOKEN" // says which container is asking; removed from the command's environment
)

// Exit is what the shim reports when the command exits on its own.
type Exit struct {
	Token    string    `json:"token"`
	Code     int       `json:"code"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// Verdict is tend's answer to an Exit.
type Verdict struct {
	Restart bool `json:"restart"` // false: end the container with the exit code
}
