package main

import (
	"os"

	"github.com/spf13/cobra"
)

// configCommand loads and validates compose files the way `up` does, without a
// daemon, and prints the project tend would run: interpolated, merged, with
// defaults filled in and x-tend resolved. Warnings go to stderr, so the output
// can be piped; an invalid file exits with code 2 and says where the fault is.
func configCommand() *cobra.Command {
	var cf composeFlags
	var asJSON, quiet bool
	cmd := &cobra.Command{
		Use:   "config [SERVICE...]",
		Short: "Validate compose files and print the project as tend will run it (no daemon needed)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cf.load(cmd.Context(), args...)
			if err != nil || quiet {
				return err
			}
			render := renderYAML
			if asJSON {
				render = renderJSON
			}
			out, err := render(p)
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(out)
			return err
		},
	}
	cf.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of YAML")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only validate: print nothing but warnings and errors")
	return cmd
}
