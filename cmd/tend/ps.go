package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

func psCommand(g *globals) *cobra.Command {
	var project, format string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the replicas tend keeps, with state, health and restarts",
		RunE: func(cmd *cobra.Command, _ []string) error {
			tmpl, err := parseFormat(format, asJSON) // format.go
			if err != nil {
				return err
			}
			reps, err := g.client().Replicas(cmd.Context(), project)
			if err != nil {
				return err
			}
			counts, err := g.client().ScaleStatus(cmd.Context(), project) // scale.go
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(withScale(reps, counts))
			}
			if tmpl != nil {
				for _, row := range withScale(reps, counts) {
					if err := printFormatted(os.Stdout, tmpl, row); err != nil {
						return err
					}
				}
				return nil
			}
			if st, err := g.client().StoreStatus(cmd.Context()); err == nil && !st.Writable {
				fmt.Println(storeLine(st))
				fmt.Println()
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			cluster := slices.ContainsFunc(reps, func(r supervisor.Replica) bool { return r.Node != "" })
			if cluster {
				fmt.Fprint(w, "NODE\t") // a cluster's replicas say where they run
			}
			fmt.Fprintln(w, "PROJECT\tSERVICE\tSLOT\tCONTAINER\tSTATE\tLIVE\tREADY\tRESTARTS\tLAST CHECK\tNOTE")
			for _, r := range reps {
				state := r.State
				if r.State == "running" && !r.StartedAt.IsZero() {
					state += " " + time.Since(r.StartedAt).Round(time.Second).String()
				} else if r.State == "exited" {
					state += fmt.Sprintf(" (%d)", r.ExitCode)
				}
				switch {
				case r.Quarantine == "trial":
					state += " (trial)"
				case r.Quarantine != "" && r.State != "running":
					state = "quarantined"
				}
				if cluster {
					fmt.Fprintf(w, "%s\t", dash(r.Node))
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Project, r.Service, r.Slot, dash(r.Container),
					state, dash(r.Live), yesNo(r.Ready), r.Restarts, dash(clip(r.Probe, 48)), r.Note)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Println()
			if err := printScale(w, counts); err != nil {
				return err
			}
			stats, err := g.client().Traffic(cmd.Context(), project)
			if err != nil || len(stats) == 0 {
				return err
			}
			fmt.Println()
			fmt.Fprintln(w, "PROJECT\tSERVICE\tREPLICA\tREQ/S\tIN FLIGHT\tP50\tP95\tP99\tCODES\tNOTE")
			for _, st := range stats {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", st.Project, st.Service, "all", trafficCells(st.Traffic, ""))
				for _, r := range st.Replicas {
					note := ""
					switch {
					case r.Draining:
						note = "draining"
					case r.Ejected:
						note = "ejected"
					case !r.Ready:
						note = "not ready"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", st.Project, st.Service, r.Replica, trafficCells(r.Traffic, note))
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Println()
			fmt.Fprintln(w, "PROJECT\tSERVICE\tLISTEN\tMODE")
			for _, st := range stats {
				for _, p := range st.Ports {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", st.Project, st.Service, p.Listen, portMode(p))
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&project, "project-name", "p", "", "only this project")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.Flags().StringVar(&format, "format", "", "print each replica with a Go template, e.g. '{{.Service}}/{{.Slot}} {{.State}} {{.Restarts}}' (fields as in --json, Go-cased; funcs json, join, lower, upper, truncate)")
	return cmd
}

// storeLine says that the store refuses writes, and what tend does meanwhile.
func storeLine(st supervisor.StoreStatus) string {
	what := "STORE NOT WRITABLE"
	if st.Full {
		what = "STORE FULL"
	}
	line := fmt.Sprintf("%s since %s: %s; healing goes on, %d journal entries held in memory until it takes writes again",
		what, st.Since.Local().Format("15:04:05"), st.Error, st.HeldEntries)
	if st.DroppedEntries > 0 {
		line += fmt.Sprintf(" (%d more did not fit and are lost)", st.DroppedEntries)
	}
	return line
}

func eventsCommand(g *globals) *cobra.Command {
	var q store.Query
	var asJSON, follow bool
	var format string
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the journal: every action tend took, with its cause",
		RunE: func(cmd *cobra.Command, _ []string) error {
			tmpl, err := parseFormat(format, asJSON) // format.go
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			return g.client().Events(cmd.Context(), q, follow, func(e store.Entry) error {
				if asJSON {
					return enc.Encode(e)
				}
				if tmpl != nil {
					return printFormatted(os.Stdout, tmpl, e)
				}
				_, err := fmt.Println(formatEntry(e))
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&q.Project, "project-name", "p", "", "only this project")
	cmd.Flags().IntVarP(&q.Limit, "tail", "n", 100, "show the last N entries (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new entries")
	cmd.Flags().StringVar(&q.Service, "service", "", "only this service's entries")
	cmd.Flags().StringVar(&q.Action, "action", "", "only entries of this action, e.g. restart")
	cmd.Flags().StringVar(&format, "format", "", "print each entry with a Go template, e.g. '{{.Time.Format \"15:04:05\"}} {{.Service}} {{.Action}} {{.Reason}}' (fields as in --json, Go-cased)")
	return cmd
}

func formatEntry(e store.Entry) string {
	where := e.Project
	if e.Service != "" {
		where += "/" + e.Service
	}
	if e.Slot > 0 { // a build is about a service, not one of its replicas
		where += "/" + strconv.Itoa(e.Slot)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-24s %-10s %-13s %s", e.Time.Local().Format("2006-01-02 15:04:05.000"), where, e.Action, e.Reason, e.Message)
	if e.Error != "" {
		fmt.Fprintf(&b, "  FAILED: %s", e.Error)
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// clip shortens s to n runes for a table cell; --json has it whole.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// portMode says how a port is served: as declared, or for a port nobody
// declared, what its clients turned out to speak.
func portMode(p proxy.PortStats) string {
	if p.Mode != proxy.Auto {
		return p.Mode.String() + " (declared)"
	}
	switch {
	case p.HTTPConns == 0 && p.TCPConns == 0:
		return "auto: no connection yet"
	case p.TCPConns == 0:
		return fmt.Sprintf("http (detected; %d connections)", p.HTTPConns)
	case p.HTTPConns == 0:
		return fmt.Sprintf("tcp (detected; %d connections)", p.TCPConns)
	}
	return fmt.Sprintf("http and tcp (detected; %d and %d connections)", p.HTTPConns, p.TCPConns)
}

// trafficCells are the proxy's figures for one row of `tend ps`.
func trafficCells(t proxy.Traffic, note string) string {
	ms := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	var codes []string
	for _, k := range slices.Sorted(maps.Keys(t.Codes)) {
		codes = append(codes, fmt.Sprintf("%s:%d", k, t.Codes[k]))
	}
	return fmt.Sprintf("%.1f\t%d\t%s\t%s\t%s\t%s\t%s", t.Rate, t.InFlight, ms(t.P50), ms(t.P95), ms(t.P99), dash(strings.Join(codes, " ")), note)
}
