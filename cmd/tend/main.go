// Command tend keeps a compose stack at its designed state on Docker.
//
// This is the only place that wires the packages together: flags, files,
// signals, the wall clock and the exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/errs"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, documented in the README.
const (
	exitOK          = 0
	exitInternal    = 1
	exitInvalid     = 2
	exitNotFound    = 3
	exitConflict    = 4
	exitUnavailable = 5
	exitNotReady    = 6 // up --wait: the stack did not become ready; chaos: it did not converge
)

// errNotReady marks an `up --wait` that ended without the stack ready.
type errNotReady struct{ msg string }

func (e errNotReady) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := rootCommand()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "tend:", err)
	os.Exit(exitCode(err))
}

func exitCode(err error) int {
	var nr errNotReady
	var nc errNotConverged
	var usage usageError
	switch {
	case errors.As(err, &nr), errors.As(err, &nc):
		return exitNotReady
	case errors.As(err, &usage):
		return exitInvalid
	}
	switch errs.KindOf(err) {
	case errs.Invalid:
		return exitInvalid
	case errs.NotFound:
		return exitNotFound
	case errs.Conflict:
		return exitConflict
	case errs.Unavailable:
		return exitUnavailable
	}
	return exitInternal
}

// usageError is a command line that cobra refused.
type usageError struct{ error }

type globals struct {
	socket string
}

func rootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "tend",
		Short:         "tend keeps a compose stack at its designed state on Docker",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&g.socket, "socket", defaultSocket(), "the daemon's unix socket (env TEND_SOCKET)")
	root.AddCommand(serveCommand(g), upCommand(g), downCommand(g), psCommand(g), eventsCommand(g), shimCommand())
	root.AddCommand(configCommand())
	root.AddCommand(buildCommand(g))                   // build.go
	root.AddCommand(scaleCommand(g))                   // scale.go
	root.AddCommand(healCommand(g))                    // heal.go
	root.AddCommand(rollbackCommand(g))                // heal.go
	root.AddCommand(logsCommand(g), inspectCommand(g)) // logs.go
	root.AddCommand(chaosCommand(g))                   // chaos.go
	root.AddCommand(tokenCommand(g))                   // token.go
	root.AddCommand(clusterCommand(g), nodeCommand(g)) // cluster.go
	for _, c := range root.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return root
}

// wrapArgs makes cobra's argument errors usage errors (exit code 2).
func wrapArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	if check == nil {
		check = cobra.NoArgs
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func (g *globals) client() *api.Client { return api.NewClient(g.socket) }

func defaultSocket() string {
	if s := os.Getenv("TEND_SOCKET"); s != "" {
		return s
	}
	if os.Geteuid() == 0 {
		return "/run/tend/tend.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "tend.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("tend-%d", os.Getuid()), "tend.sock")
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/tend"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "tend")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "tend")
}
