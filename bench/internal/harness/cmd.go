package harness

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Run runs a command and returns its combined output, trimmed. The error carries the
// output, which is where docker and tend explain what went wrong.
func Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, Tail(s, 600))
	}
	return s, nil
}

// Tail returns at most the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
