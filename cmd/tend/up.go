package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/compose"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/supervisor"
)

type composeFlags struct {
	files    []string
	project  string
	profiles []string
}

func (f *composeFlags) add(cmd *cobra.Command) { f.addAs(cmd, "f") }

// addAs is add with the file flag's shorthand given: `tend logs` keeps -f
// for follow, as `docker compose logs` does.
func (f *composeFlags) addAs(cmd *cobra.Command, fileShorthand string) {
	cmd.Flags().StringArrayVarP(&f.files, "file", fileShorthand, nil, "compose file (repeat to merge; default compose.yaml in this directory)")
	cmd.Flags().StringVarP(&f.project, "project-name", "p", "", "project name (default: the file's name: key, or its directory)")
	cmd.Flags().StringArrayVar(&f.profiles, "profile", nil, "compose profile to enable (repeatable)")
}

// load reads the compose files; services, when named, select those and what they depend on.
func (f *composeFlags) load(ctx context.Context, services ...string) (*spec.Project, error) {
	p, warnings, err := compose.Load(ctx, compose.LoadOptions{Files: f.files, ProjectName: f.project,
		Profiles: f.profiles, Environ: os.Environ(), Services: services})
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	return p, err
}

func upCommand(g *globals) *cobra.Command {
	var cf composeFlags
	var wait, build bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "up [SERVICE...]",
		Short: "Hand a compose project to the daemon, which brings it up and keeps it up",
		Long: `Hand a compose project to the daemon, which brings it up and keeps it up.

With SERVICE names, only those and the services they depend on are brought up
or updated; the project's other running services are left as they are, as with
docker compose up SERVICE.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cf.load(cmd.Context(), args...)
			if err != nil {
				return err
			}
			// Images first: a failed build hands nothing over, so nothing of the stack changes.
			if err := buildImages(cmd.Context(), g.client(), p, buildable(p), build, os.Stdout); err != nil {
				return err
			}
			// Values of secrets and configs from the environment or inline go to files
			// on a tmpfs; the daemon gets only their paths.
			if err := compose.WriteValues(p); err != nil {
				return fmt.Errorf("write the values of secrets and configs: %w", err)
			}
			start := time.Now()
			up := g.client().Up
			if len(args) > 0 {
				up = g.client().UpSelected
			}
			rec, err := up(cmd.Context(), p)
			if err != nil {
				return err
			}
			fmt.Printf("project %s: desired state version %d handed to tend\n", p.Name, rec.Version)
			if !wait {
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := waitReady(ctx, g, p.Name, start); err != nil {
				return err
			}
			return rolledBack(ctx, g, p.Name, rec.Version) // rollout.go
		},
	}
	cf.add(cmd)
	cmd.Flags().BoolVar(&build, "build", false, "build the images of services with a build section even if they exist (else only missing ones are built)")
	cmd.Flags().BoolVar(&wait, "wait", false, "show progress and return when every replica runs (and is healthy, where it has a check)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait: give up after this long (exit code 6)")
	return cmd
}

// waitReady polls the daemon until every replica of the project is ready, one
// has failed, or ctx ends. The engine is the slow part, so 100 ms polls cost
// little and add at most 100 ms.
func waitReady(ctx context.Context, g *globals, project string, start time.Time) error {
	c := g.client()
	last := ""
	for {
		reps, err := c.Replicas(ctx, project)
		if err != nil && ctx.Err() == nil {
			return err
		}
		ready, failed, pending := tally(reps)
		line := fmt.Sprintf("%d/%d ready", ready, len(reps))
		if len(pending) > 0 {
			line += ": " + strings.Join(first(pending, 4), ", ")
		}
		if line != last {
			fmt.Printf("  %s %s\n", time.Since(start).Round(10*time.Millisecond), line)
			last = line
		}
		switch {
		case len(failed) > 0:
			return errNotReady{fmt.Sprintf("project %s will not come up without you: %s (see `tend events -p %s`)",
				project, strings.Join(failed, "; "), project)}
		case err == nil && ready == len(reps):
			fmt.Printf("project %s is up: %d replicas ready in %s\n", project, ready, time.Since(start).Round(10*time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			if cerr := context.Cause(ctx); cerr == context.DeadlineExceeded {
				return errNotReady{fmt.Sprintf("project %s not ready after %s: %s", project,
					time.Since(start).Round(time.Second), strings.Join(pending, ", "))}
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tally(reps []supervisor.Replica) (ready int, failed, pending []string) {
	for _, r := range reps {
		name := r.Container
		if name == "" {
			name = fmt.Sprintf("%s/%d", r.Service, r.Slot)
		}
		switch {
		case r.Ready:
			ready++
		case r.Failed:
			failed = append(failed, fmt.Sprintf("%s %s (exit code %d)", name, r.State, r.ExitCode))
		case r.Quarantine == "quarantined":
			failed = append(failed, fmt.Sprintf("%s quarantined (exit code %d)", name, r.ExitCode))
		default:
			what := r.State
			if r.Health != "" && r.Health != "-" && r.State == "running" {
				what = r.Health
			}
			switch {
			case r.Note != "" && r.State == "pending":
				what = r.Note
			case r.Note != "":
				what += ", " + r.Note
			}
			pending = append(pending, name+" "+what)
		}
	}
	return ready, failed, pending
}

func first(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
}

func downCommand(g *globals) *cobra.Command {
	var cf composeFlags
	var volumes bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop and remove a project's containers and networks (volumes only with --volumes)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := projectName(cmd.Context(), g, &cf)
			if err != nil {
				return err
			}
			if err := g.client().Down(cmd.Context(), name, volumes); err != nil {
				return err
			}
			fmt.Printf("project %s is down\n", name)
			return nil
		},
	}
	cf.add(cmd)
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "also remove the project's named volumes")
	return cmd
}

// projectName picks the project a command means: -p; else the compose file's;
// else the only project the daemon keeps.
func projectName(ctx context.Context, g *globals, cf *composeFlags) (string, error) {
	if cf.project != "" {
		return cf.project, nil
	}
	if p, err := cf.load(ctx); err == nil {
		return p.Name, nil
	} else if len(cf.files) > 0 {
		return "", err
	}
	recs, err := g.client().Projects(ctx)
	if err != nil {
		return "", err
	}
	if len(recs) == 1 {
		return recs[0].Project.Name, nil
	}
	names := make([]string, len(recs))
	for i, r := range recs {
		names[i] = r.Project.Name
	}
	return "", errs.E(errs.Invalid, "say which project with -p (the daemon keeps %d: %s)", len(recs), strings.Join(names, ", "))
}
