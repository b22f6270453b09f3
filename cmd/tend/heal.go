package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
)

// healCommand lifts a service's quarantine by hand.
func healCommand(g *globals) *cobra.Command {
	return serviceAction(g, "heal SERVICE", "Lift a service's quarantine by hand and give its replicas a fresh restart budget",
		func(ctx context.Context, c *api.Client, project, service string) (string, error) {
			return c.Heal(ctx, project, service)
		})
}

// rollbackCommand rolls a service back to the spec it ran before.
func rollbackCommand(g *globals) *cobra.Command {
	return serviceAction(g, "rollback SERVICE", "Roll a service back to the spec it ran before, replica by replica (its deploy.rollback_config)",
		func(ctx context.Context, c *api.Client, project, service string) (string, error) {
			return c.Rollback(ctx, project, service)
		})
}

// serviceAction is a command that asks the daemon to act on one service of
// a project and prints the daemon's answer as "project/service: answer".
func serviceAction(g *globals, use, short string, act func(ctx context.Context, c *api.Client, project, service string) (string, error)) *cobra.Command {
	var cf composeFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := projectName(cmd.Context(), g, &cf)
			if err != nil {
				return err
			}
			msg, err := act(cmd.Context(), g.client(), name, args[0])
			if err != nil {
				return err
			}
			fmt.Printf("%s/%s: %s\n", name, args[0], msg)
			return nil
		},
	}
	cf.add(cmd)
	return cmd
}
