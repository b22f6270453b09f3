// Package shim is the small init process tend puts in front of a replica's
// own command, inside its container (as Docker's --init puts tini there).
//
// When the command exits on its own, the shim does not let the container
// die: it tells tend over a control socket and waits for tend's planner to
// decide. "restart" runs the command again in the same container, which
// takes milliseconds where a restart through the engine takes a few hundred
// (the engine tears the network down and sets it up again); "exit" ends the
// container with the command's exit code. Policy (backoff, attempts, giving
// up) stays in tend: the shim only asks. If tend cannot be reached, or the
// container is being stopped, the shim exits with the command's code at once,
// so without tend a replica behaves as a plain container.
//
// As PID 1 the shim also forwards signals to the command and reaps orphaned
// processes. It must not import tend's other packages: it runs inside every
// replica and is kept small.
package shim
