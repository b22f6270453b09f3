package proxy

import "time"

// socketDeadline is the deadline d from now for a socket
// (net.Conn.SetReadDeadline): the operating system's poller measures it
// against the wall clock, whatever clock the proxy runs on, so it is read
// here, the proxy's one wall-clock read (internal/arch_test.go allows it).
// On a fake clock, Config.Clock's Now would give the socket a deadline
// right only while the fake happened to read the real time. What the
// proxy waits for of its own (holds, pauses, response heads) runs on
// Config.Clock; a socket deadline is only a guard the OS keeps.
func socketDeadline(d time.Duration) time.Time { return time.Now().Add(d) }
