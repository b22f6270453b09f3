package proxy

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps the adapter an adapter: the proxy knows nothing of
// Docker, the store, the supervisor or the planners (its own packages,
// under internal/proxy, are its own; internal/clock is time itself).
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		// internal/breaker is the request breaker: a pure machine the exchange drives.
		if strings.HasPrefix(imp, "github.com/tend-sh/tend/internal/proxy/") || imp == "github.com/tend-sh/tend/internal/clock" ||
			imp == "github.com/tend-sh/tend/internal/breaker" {
			continue
		}
		for _, bad := range []string{"github.com/moby/", "github.com/docker/", "github.com/tend-sh/tend/"} {
			if strings.HasPrefix(imp, bad) {
				t.Errorf("proxy imports %s", imp)
			}
		}
	}
}
