package main

import (
	"fmt"
	"os"
	"slices"
)

// DEMO_REQUIRE=PATH makes the demo exit 1 at start while PATH does not
// exist: a service that cannot start until something outside it is fixed
// (a missing config, a dependency), for tend's quarantine and its
// half-open trials. Probes (-probe) are not affected.
func init() {
	path := os.Getenv("DEMO_REQUIRE")
	if path == "" || slices.Contains(os.Args[1:], "-probe") {
		return
	}
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(os.Stderr, "demo: cannot start: %v\n", err)
		os.Exit(1)
	}
}
