package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/shim"
)

// shimCommand is the init process tend puts in each replica's container
// (internal/shim). People do not run it.
func shimCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "shim -- COMMAND [ARG...]",
		Short:              "Run a replica's command and ask tend before letting the container end (inside containers only)",
		Hidden:             true,
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		Run: func(_ *cobra.Command, args []string) {
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			}
			os.Exit(shim.Run(shim.Config{Argv: args}))
		},
	}
}
