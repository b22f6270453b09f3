package main

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/supervisor"
)

// logsCommand prints a service's output, every replica's line after its
// container's name, as docker compose logs does.
func logsCommand(g *globals) *cobra.Command {
	var cf composeFlags
	var follow bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs SERVICE[/N]",
		Short: "Print the output of a service's replicas (or of replica N), each line after its container's name",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := projectName(cmd.Context(), g, &cf)
			if err != nil {
				return err
			}
			service, slot, err := serviceOrReplica(args[0])
			if err != nil {
				return err
			}
			return g.client().Logs(cmd.Context(), name, service, slot, tail, follow, os.Stdout)
		},
	}
	cf.addAs(cmd, "") // -f is follow here, as in docker compose logs
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "go on with what they print next, and take up replicas that start meanwhile")
	cmd.Flags().IntVar(&tail, "tail", 0, "only the last N lines of each replica (0: all)")
	return cmd
}

// serviceOrReplica reads "web" or "web/2".
func serviceOrReplica(arg string) (service string, slot int, err error) {
	service, n, one := strings.Cut(arg, "/")
	if !one {
		return service, 0, nil
	}
	if slot, err = strconv.Atoi(n); err != nil || slot < 1 || service == "" {
		return "", 0, errs.E(errs.Invalid, "%q: want SERVICE or SERVICE/N, N from 1", arg)
	}
	return service, slot, nil
}

// inspection is what `tend inspect` prints: the service as tend runs it.
type inspection struct {
	Project  string                  `json:"project"`
	Version  int                     `json:"version"` // the desired state's version
	Spec     *spec.Service           `json:"spec"`    // as the daemon's API gives it
	Scale    *supervisor.ScaleStatus `json:"scale,omitempty"`
	Replicas []supervisor.Replica    `json:"replicas"`
	Traffic  *proxy.ServiceStats     `json:"traffic,omitempty"`
}

// inspectCommand prints one service (or replica) as tend sees it, as JSON.
func inspectCommand(g *globals) *cobra.Command {
	var cf composeFlags
	cmd := &cobra.Command{
		Use:   "inspect SERVICE[/N]",
		Short: "Print a service (or replica N) as tend runs it, as JSON: its spec, counts, replicas and traffic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name, err := projectName(ctx, g, &cf)
			if err != nil {
				return err
			}
			service, slot, err := serviceOrReplica(args[0])
			if err != nil {
				return err
			}
			c := g.client()
			recs, err := c.Projects(ctx)
			if err != nil {
				return err
			}
			var out inspection
			for _, rec := range recs {
				if rec.Project.Name == name {
					out.Project, out.Version = name, rec.Version
					if svc, ok := rec.Project.Service(service); ok {
						out.Spec = svc
					}
				}
			}
			if out.Project == "" {
				return errs.E(errs.NotFound, "no project %q", name)
			}
			if out.Spec == nil {
				return errs.E(errs.NotFound, "project %q has no service %q", name, service)
			}
			reps, err := c.Replicas(ctx, name)
			if err != nil {
				return err
			}
			for _, r := range reps {
				if r.Service == service && (slot == 0 || r.Slot == slot) {
					out.Replicas = append(out.Replicas, r)
				}
			}
			if slot > 0 && len(out.Replicas) == 0 {
				return errs.E(errs.NotFound, "service %q has no replica %d", service, slot)
			}
			if counts, err := c.ScaleStatus(ctx, name); err == nil {
				for i := range counts {
					if counts[i].Service == service {
						out.Scale = &counts[i]
					}
				}
			}
			if stats, err := c.Traffic(ctx, name); err == nil {
				for i := range stats {
					if stats[i].Service == service {
						out.Traffic = &stats[i]
					}
				}
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
	cf.add(cmd)
	return cmd
}
