package proxy

import (
	"time"

	"github.com/tend-sh/tend/internal/clock"
)

// clk is the proxy's time: Config.Clock, read as mono, nanoseconds since
// the Manager was made, which is the `now` the exchange, the balancer and
// the statistics take. Its timers are the waits (a request waiting for a
// replica, a pause, the response head's deadline); the loops' callbacks
// and the goroutine paths read it, nothing else does.
type clk struct {
	clock.Clock
	base time.Time
}

func newClk(c clock.Clock) *clk { return &clk{Clock: c, base: c.Now()} }

// mono is now in nanoseconds since base: on the real clock, the
// monotonic clock alone (Since), so a change of the wall clock moves
// nothing, and it costs what time.Since does on the hot path.
func (c *clk) mono() int64 { return int64(c.Since(c.base)) }

// aLongTimeAgo is a deadline in the past: set on a socket, it cuts the
// reads (or writes) waiting on it at once. It needs no clock.
var aLongTimeAgo = time.Unix(1, 0)
