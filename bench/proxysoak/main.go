// Command proxysoak serves one route with tend's proxy and nothing else, for
// profiling the proxy by hand under an outside load (wrk, perf, strace), without
// the daemon's other work in the way:
//
//	go run ./bench/proxysoak -listen 127.0.0.1:18080 -backends 127.0.0.1:9101,127.0.0.1:9102 -for 60s
//
// bench/README.md ("profiling the proxy by hand") shows how it was used.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "address to serve")
	backends := flag.String("backends", "", "comma-separated backend addresses (ip:port)")
	d := flag.Duration("for", time.Minute, "how long to serve")
	debug := flag.Bool("debug", false, "log the proxy's failed attempts")
	flag.Parse()
	if err := run(*listen, *backends, *d, *debug); err != nil {
		fmt.Fprintln(os.Stderr, "proxysoak:", err)
		os.Exit(1)
	}
}

func run(listen, backends string, d time.Duration, debug bool) error {
	lp, err := netip.ParseAddrPort(listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	r := proxy.Route{Project: "soak", Service: "web", Listen: lp}
	for i, b := range strings.Split(backends, ",") {
		a, err := netip.ParseAddrPort(b)
		if err != nil {
			return fmt.Errorf("-backends: %w", err)
		}
		r.Backends = append(r.Backends, proxy.Backend{ID: b, Replica: fmt.Sprintf("web/%d", i+1), Addr: a, Ready: true})
	}
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	m := proxy.NewManager(proxy.Config{Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))})
	if err := m.Sync([]proxy.Route{r}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return m.Run(ctx)
}
