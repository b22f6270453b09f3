package harness

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
)

// Main runs a benchmark's run with a context that ends on ^C or SIGTERM, so that run
// still cleans up after them, and exits with the code run returns.
func Main(run func(ctx context.Context) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}

// Preflight checks that the demo image is there and, with neighReset, opens the
// neighbour cache (nil without; Close is safe on nil). Its errors say how to fix them.
func Preflight(ctx context.Context, d *Docker, image string, neighReset bool) (*Neighbours, error) {
	if _, err := d.ImageHealthcheck(ctx, image); err != nil {
		return nil, fmt.Errorf("image %s: %v (build it with examples/demo/build.sh)", image, err)
	}
	if !neighReset {
		return nil, nil
	}
	n, err := OpenNeighbours()
	if err != nil {
		return nil, fmt.Errorf("%v (run as root, or -neigh-reset=false)", err)
	}
	return n, nil
}

// Host describes the machine for a benchmark's header: "4 CPUs, kernel 6.1.0, engine
// 27.3.1 (API 1.47)".
func Host() string {
	ver, _ := Run(context.Background(), "docker", "version", "--format", "engine {{.Server.Version}} (API {{.Server.APIVersion}})")
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d CPUs, kernel %s, %s", runtime.NumCPU(), strings.TrimSpace(string(kernel)), ver)
}
