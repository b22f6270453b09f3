package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/supervisor"
)

func scaleCommand(g *globals) *cobra.Command {
	var cf composeFlags
	var auto bool
	cmd := &cobra.Command{
		Use:   "scale SERVICE=N... | scale SERVICE... --auto",
		Short: "Set a service's replica count; under autoscaling it pins the count until `tend scale SERVICE --auto`",
		Long: `tend scale web=3 runs three replicas of web. For a service with x-tend.autoscale the count
is pinned: the autoscaler leaves the service alone until tend scale web --auto hands it back
(and forgets an earlier no-effect verdict). For a service without autoscale, --auto goes back to
the file's deploy.replicas, as does a later tend up whose file changes deploy.replicas.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := projectName(cmd.Context(), g, &cf)
			if err != nil {
				return err
			}
			for _, arg := range args {
				service, count, pinned := strings.Cut(arg, "=")
				req := api.ScaleRequest{Auto: auto}
				switch {
				case pinned && auto:
					return errs.E(errs.Invalid, "%s: give SERVICE=N or SERVICE --auto, not both", arg)
				case pinned:
					n, err := strconv.Atoi(count)
					if err != nil || n < 0 {
						return errs.E(errs.Invalid, "%s: want SERVICE=N with N a count of 0 or more", arg)
					}
					req.Replicas = &n
				case !auto:
					return errs.E(errs.Invalid, "%s: want SERVICE=N, or SERVICE --auto", arg)
				}
				st, err := g.client().Scale(cmd.Context(), name, service, req)
				if err != nil {
					return err
				}
				fmt.Println(describeScale(st))
			}
			return nil
		},
	}
	cf.add(cmd)
	cmd.Flags().BoolVar(&auto, "auto", false, "hand the count back to the autoscaler (or to the file)")
	return cmd
}

func describeScale(st supervisor.ScaleStatus) string {
	switch {
	case st.Pinned:
		return fmt.Sprintf("%s/%s: pinned at %d replicas", st.Project, st.Service, st.Desired)
	case st.Auto:
		return fmt.Sprintf("%s/%s: autoscaled within %d-%d, now %d", st.Project, st.Service, st.Min, st.Max, st.Desired)
	}
	return fmt.Sprintf("%s/%s: %d replicas, as the file says", st.Project, st.Service, st.Desired)
}

// printScale is the counts table of `tend ps`.
func printScale(w *tabwriter.Writer, sts []supervisor.ScaleStatus) error {
	fmt.Fprintln(w, "PROJECT\tSERVICE\tCURRENT\tDESIRED\tMIN\tMAX\tMETRIC\tTARGET\tNOTE")
	for _, st := range sts {
		lo, hi, note := "-", "-", ""
		if st.Max > 0 {
			lo, hi = strconv.Itoa(st.Min), strconv.Itoa(st.Max)
		}
		switch {
		case st.Rollout != nil:
			note = rolloutNote(st.Rollout)
		case st.Pinned:
			note = "pinned by tend scale"
		case st.Held != "":
			note = "held: " + st.Held
		case st.NoEffect != "":
			note = "no-effect: " + st.NoEffect
		case st.Auto:
			note = "auto"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", st.Project, st.Service, st.Current, st.Desired, lo, hi,
			dash(st.Metric), dash(st.Target), note)
	}
	return w.Flush()
}

// rolloutNote is a rollout under way in a few words: "rolling out to 3f2a9c1e, step 2: 1 old, 2 new".
func rolloutNote(r *supervisor.RolloutStatus) string {
	what := "rolling out to "
	if r.Rollback {
		what = "rolling back to "
	}
	s := fmt.Sprintf("%s%s, step %d: %d old, %d new", what, clip(r.Target, 8), r.Step, r.Old, r.New)
	if r.Paused {
		s += "; paused: " + r.Failure
	}
	return s
}

// psRow is a replica in `tend ps --json`, with its service's counts.
type psRow struct {
	supervisor.Replica
	Scale *supervisor.ScaleStatus `json:"scale,omitempty"`
}

func withScale(reps []supervisor.Replica, sts []supervisor.ScaleStatus) []psRow {
	out := make([]psRow, len(reps))
	for i, r := range reps {
		out[i].Replica = r
		for j := range sts {
			if sts[j].Project == r.Project && sts[j].Service == r.Service {
				out[i].Scale = &sts[j]
			}
		}
	}
	return out
}
