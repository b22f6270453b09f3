package main

import (
	"fmt"
	"strings"
)

// replicaCounts spreads total containers over n services the way real stacks look: a
// few wide services, many of two, some singletons. It returns n counts summing to total.
func replicaCounts(n, total int) ([]int, error) {
	if n <= 0 || total < n {
		return nil, fmt.Errorf("cannot spread %d containers over %d services", total, n)
	}
	counts := make([]int, n)
	for i := range counts {
		counts[i] = 1
	}
	// Hand out the rest with weights falling along the list: 5,5,4,4,3,3,3,3,2,... for 20/50.
	left := total - n
	for round := 0; left > 0; round++ {
		limit := (n * 4 / 5) >> round // fewer services get each further replica
		if limit == 0 {
			limit = 1
		}
		for i := 0; i < limit && left > 0; i++ {
			counts[i]++
			left--
		}
	}
	return counts, nil
}

// composeFile writes the stack: services svc01.. on image, with the given replica
// counts, all on one user-defined network; the first withHealth services get the demo's
// exec-form health check.
func composeFile(image string, counts []int, withHealth int) string {
	var b strings.Builder
	b.WriteString("# written by bench/up: the same file is given to docker-compose and to tend\n")
	b.WriteString("services:\n")
	for i, c := range counts {
		fmt.Fprintf(&b, "  svc%02d:\n", i+1)
		fmt.Fprintf(&b, "    image: %s\n", image)
		b.WriteString("    networks: [bench]\n")
		fmt.Fprintf(&b, "    deploy:\n      replicas: %d\n", c)
		if i < withHealth {
			b.WriteString("    healthcheck:\n")
			b.WriteString("      test: [\"CMD\", \"/demo\", \"-probe\", \"http://127.0.0.1:8080/health\"]\n")
			b.WriteString("      interval: 1s\n      timeout: 1s\n      retries: 3\n")
		}
	}
	b.WriteString("networks:\n  bench: {}\n")
	return b.String()
}
