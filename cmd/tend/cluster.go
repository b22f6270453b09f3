package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/cluster"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/nodes"
)

// clusterFlags are serve's flags of cluster mode.
type clusterFlags struct {
	init, manager          bool
	join, token, advertise string
	name                   string
	joinPort, client, peer int
}

func (f *clusterFlags) add(cmd *cobra.Command) {
	d := cluster.DefaultPorts
	cmd.Flags().BoolVar(&f.init, "cluster-init", false, "make a new cluster with this host as its first manager (embedded etcd); needs --advertise")
	cmd.Flags().StringVar(&f.join, "join", "", "join the cluster of the manager at this address (host or host:port of its join port); needs --token and --advertise")
	cmd.Flags().StringVar(&f.token, "token", "", "the join token, as a manager's tend cluster join-token printed it")
	cmd.Flags().StringVar(&f.advertise, "advertise", "", "the IP address other hosts of the cluster reach this one on")
	cmd.Flags().BoolVar(&f.manager, "manager", false, "join as a manager (an etcd member that can lead); needs a manager token")
	cmd.Flags().StringVar(&f.name, "node-name", "", "this node's name in the cluster (default: the host name)")
	cmd.Flags().IntVar(&f.joinPort, "join-port", d.Join, "managers: the port hosts join on (HTTPS)")
	cmd.Flags().IntVar(&f.client, "etcd-client-port", d.Client, "managers: etcd's client port")
	cmd.Flags().IntVar(&f.peer, "etcd-peer-port", d.Peer, "managers: etcd's peer port")
}

// start joins, makes or rejoins the cluster; nil when this tend is a single
// host: started without --cluster-init or --join and never in a cluster.
func (f *clusterFlags) start(ctx context.Context, data string, log *slog.Logger) (*cluster.Member, error) {
	dir := filepath.Join(data, "cluster")
	_, err := os.Stat(filepath.Join(dir, "cluster.json"))
	was := err == nil
	if !f.init && f.join == "" && !was {
		if f.token != "" || f.advertise != "" || f.manager {
			return nil, errs.E(errs.Invalid, "--token, --advertise and --manager go with --cluster-init or --join")
		}
		return nil, nil
	}
	if f.init && f.join != "" {
		return nil, errs.E(errs.Invalid, "--cluster-init makes a cluster, --join joins one: give one of them")
	}
	if f.join != "" && f.token == "" {
		return nil, errs.E(errs.Invalid, "--join needs --token (from `tend cluster join-token` on a manager)")
	}
	if !was && f.advertise == "" {
		return nil, errs.E(errs.Invalid, "--advertise: give the IP address other hosts reach this one on")
	}
	return cluster.Start(ctx, cluster.Config{Dir: dir, Name: f.name, Advertise: f.advertise, Init: f.init,
		Join: f.join, Token: f.token, Manager: f.manager,
		Ports: cluster.Ports{Join: f.joinPort, Client: f.client, Peer: f.peer},
		Clock: clock.Real{}, Log: log})
}

func clusterCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "The cluster this tend is in"}
	var manager bool
	tok := &cobra.Command{
		Use:   "join-token",
		Short: "Print the token another host joins with (tend serve --join ADDR --token TOKEN --advertise IP)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			role := nodes.Worker
			if manager {
				role = nodes.Manager
			}
			t, err := g.client().JoinToken(cmd.Context(), role)
			if err != nil {
				return err
			}
			fmt.Printf("To join as a %s, run on the other host:\n  tend serve --join MANAGER_ADDRESS --token TOKEN --advertise ITS_ADDRESS", role)
			if manager {
				fmt.Print(" --manager")
			}
			fmt.Printf("\nwith this token:\n%s\n", t)
			return nil
		},
	}
	tok.Flags().BoolVar(&manager, "manager", false, "the token of managers, not of workers")
	cmd.AddCommand(tok)
	return cmd
}

func nodeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "The cluster's nodes"}
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the nodes: name, address, role, leader, state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := g.client().Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tADDRESS\tROLE\tLEADER\tSTATE")
			for _, n := range all {
				leader := ""
				if n.Leader {
					leader = "leader"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s %s\n", n.Name, n.Address, n.Role, dash(leader), n.State,
					time.Since(n.Since).Round(time.Second))
			}
			return w.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(ls)
	return cmd
}
