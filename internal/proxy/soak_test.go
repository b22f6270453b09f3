package proxy

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSoak serves a route by hand, for profiling the proxy under an
// outside load: TEND_SOAK="listen backend,backend..." (e.g.
// "127.0.0.1:18080 127.0.0.1:9101,127.0.0.1:9102"), for TEND_SOAK_FOR
// (default 30s). Skipped without TEND_SOAK.
func TestSoak(t *testing.T) {
	spec := os.Getenv("TEND_SOAK")
	if spec == "" {
		t.Skip("TEND_SOAK not set")
	}
	listen, backends, _ := strings.Cut(spec, " ")
	r := Route{Project: "soak", Service: "web", Listen: netip.MustParseAddrPort(listen)}
	for i, b := range strings.Split(backends, ",") {
		r.Backends = append(r.Backends, Backend{ID: b, Replica: "web/" + string(rune('1'+i)), Addr: netip.MustParseAddrPort(b), Ready: true})
	}
	d, err := time.ParseDuration(os.Getenv("TEND_SOAK_FOR"))
	if err != nil {
		d = 30 * time.Second
	}
	m := NewManager(Config{Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err := m.Sync([]Route{r}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m.Run(ctx)
}
