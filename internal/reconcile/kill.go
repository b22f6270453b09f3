package reconcile

import (
	"fmt"
	"time"

	"github.com/tend-sh/tend/internal/runtime"
)

// A replica killed from outside (docker kill or docker stop, a person's kill,
// another tool) after a healthy run is not a crash of its program: it is
// restarted at once and its crash streak ends, so a service whose replicas
// are killed one after the other keeps serving instead of waiting out an
// ever longer backoff. What the planner can tell apart:
//
//   - the run ended by a signal someone sends to stop a process (stopSignals);
//     a program's own faults end it with others (SIGSEGV, SIGABRT, ...) or an exit code;
//   - the engine does not say the OOM killer struck (an OOM kill is the program's doing);
//   - the container itself ended: under tend's shim, docker kill and docker stop
//     signal the shim, so a command killed inside a container that lives on
//     (a held exit) was most likely killed by the OOM killer, which the engine
//     reports only for the container;
//   - tend saw the run ready, and it ran at least backoff.initial: a program that
//     is killed before it serves, or within the first backoff, may be killed by
//     its own doing (or exit with 137 itself), and must still back off.

// stopSignals are the signals people and tools send to end a process.
var stopSignals = map[int]bool{1: true, 2: true, 3: true, 9: true, 15: true} // HUP, INT, QUIT, KILL, TERM

// killedAfterHealthyRun tells whether c's exit is a kill from outside after a
// healthy run, and the signal. When it is not, note says why a kill (or an
// OOM kill) counts as a crash, for the journal; it is empty for other exits.
func (s *slotPlanner) killedAfterHealthyRun(c *runtime.Container) (sig int, ok bool, note string) {
	if c.OOMKilled {
		return 0, false, " (killed by the kernel's OOM killer)"
	}
	sig = c.ExitCode - 128
	if !stopSignals[sig] {
		return 0, false, ""
	}
	ran := c.FinishedAt.Sub(c.StartedAt)
	switch {
	case c.Held:
		return sig, false, fmt.Sprintf(" (killed by signal %d inside its container: counted as a crash)", sig)
	case c.StartedAt.IsZero() || !s.history.ReadyRun.Equal(runOf(c)) && !s.health[c.ID].ReadyRun.Equal(c.StartedAt):
		return sig, false, fmt.Sprintf(" (killed by signal %d before it was ready: counted as a crash)", sig)
	case ran < s.svc.Tend.Backoff.Initial:
		return sig, false, fmt.Sprintf(" (killed by signal %d only %s after it started: counted as a crash)", sig, ran.Round(time.Millisecond))
	}
	return sig, true, ""
}

// noteReady remembers that tend saw c's current run ready.
func (s *slotPlanner) noteReady(c *runtime.Container) {
	if s.health[c.ID].Ready && !c.StartedAt.IsZero() {
		s.history.ReadyRun = runOf(c)
	}
}
