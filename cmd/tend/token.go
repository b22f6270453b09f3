package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/access"
	"github.com/tend-sh/tend/internal/api"
)

// tokenCommand manages the tokens of the HTTPS listener, over the unix socket only.
func tokenCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the tokens that requests to the HTTPS listener (serve --listen) carry",
		Args:  cobra.NoArgs,
	}
	var name, role string
	create := &cobra.Command{
		Use:   "create",
		Short: "Make a token (role read: look; admin: also act); it is printed once, on the last line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role == "" {
				return usageError{errors.New("--role read or --role admin is required")}
			}
			r, err := access.ParseRole(role)
			if err != nil {
				return usageError{err}
			}
			nt, err := g.client().CreateToken(cmd.Context(), api.TokenRequest{Name: name, Role: r})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "token %s (role %s, id %s); tend keeps only its hash, so this is the only time it is shown:\n",
				nt.Token.Name, nt.Token.Role, nt.Token.ID)
			fmt.Println(nt.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "", "read or admin (required)")
	create.Flags().StringVar(&name, "name", "", "a name to tell it by (default token-ID)")

	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			toks, err := g.client().Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(toks)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tROLE\tCREATED")
			for _, t := range toks {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.Created.Local().Format(time.DateTime))
			}
			return w.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	rm := &cobra.Command{
		Use:   "rm NAME|ID",
		Short: "Remove a token: requests carrying it are refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().RemoveToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Printf("removed token %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, ls, rm)
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}
