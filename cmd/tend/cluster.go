package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/cluster"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/nodes"
	"github.com/tend-sh/tend/internal/place"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/docker"
	"github.com/tend-sh/tend/internal/store"
	etcdstore "github.com/tend-sh/tend/internal/store/etcd"
	"github.com/tend-sh/tend/internal/supervisor"
)

// clusterFlags are serve's flags of cluster mode.
type clusterFlags struct {
	init, manager          bool
	join, token, advertise string
	name                   string
	joinPort, client, peer int
	drainDisk, drainMem    float64
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
	cmd.Flags().Float64Var(&f.drainDisk, "drain-disk-free", 100*nodes.DefaultPressure.DiskFree, "drain a node whose engine's disk has less than this percent free (undrain 5 points above)")
	cmd.Flags().Float64Var(&f.drainMem, "drain-memory-available", 100*nodes.DefaultPressure.MemAvailable, "drain a node with less than this percent of its memory available (undrain 5 points above)")
}

// start joins, makes or rejoins the cluster; nil when this tend is a single
// host: started without --cluster-init or --join and never in a cluster.
func (f *clusterFlags) start(ctx context.Context, data string, hooks clusterHooks, log *slog.Logger) (*cluster.Member, error) {
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
		Clock: clock.Real{}, Log: log,
		Desired: hooks.desired, OnMove: hooks.moved, OnAssign: hooks.poke, OnFence: hooks.fence, OnUnfence: hooks.poke, OnReports: hooks.retraffic,
		Figures: hooks.figures, OnNode: hooks.node,
		Pressure: nodes.Pressure{DiskFree: f.drainDisk / 100, MemAvailable: f.drainMem / 100, Hysteresis: nodes.DefaultPressure.Hysteresis}})
}

// clusterHooks tie the member to the store and the supervisor, both made after it.
type clusterHooks struct {
	store     func() store.Store
	poke      func()
	retraffic func()
	runtime   func() runtime.Runtime
}

// figures measures this host for the pressure rule (figures.go).
func (h clusterHooks) figures() nodes.Figures {
	root := ""
	if d, ok := h.runtime().(*docker.Docker); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		root, _ = d.RootDir(ctx)
		cancel()
	}
	return measure(root)
}

// node journals what the leader did to a node.
func (h clusterHooks) node(action, node, reason, msg string) {
	if st := h.store(); st != nil {
		_, _ = st.Append(store.Entry{Time: time.Now(), Action: action, Reason: reason, Message: "node " + node + ": " + msg})
	}
}

// fence kills every replica on this host's engine at once (no grace: the
// leader places them elsewhere within fenceMargin).
func (h clusterHooks) fence() {
	rt := h.runtime()
	if rt == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cs, err := rt.List(ctx, "")
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		if c.State == runtime.Running {
			wg.Go(func() { _ = rt.Stop(ctx, c.ID, 0) })
		}
	}
	wg.Wait()
}

// clusterStore is the store of a node of a cluster: etcd, through the member's client.
func clusterStore(m *cluster.Member) (store.Store, error) {
	return etcdstore.New(etcdstore.Config{Client: m.Client()})
}

// desired are the slots every project asks for, at the counts tend chose.
func (h clusterHooks) desired(ctx context.Context) ([]place.Slot, error) {
	st := h.store()
	if st == nil {
		return nil, nil
	}
	recs, err := st.Projects()
	if err != nil {
		return nil, err
	}
	var out []place.Slot
	for _, rec := range recs {
		if rec.Deleting {
			continue
		}
		counts, err := st.Counts(rec.Project.Name)
		if err != nil {
			return nil, err
		}
		for i := range rec.Project.Services {
			svc := &rec.Project.Services[i]
			n, ok := counts[svc.Name]
			for slot := 1; slot <= store.Replicas(svc, n, ok); slot++ {
				out = append(out, place.Slot{Project: rec.Project.Name, Service: svc.Name, Slot: slot})
			}
		}
	}
	return out, ctx.Err()
}

// moved journals the leader's placements.
func (h clusterHooks) moved(moves []place.Move) {
	st := h.store()
	if st == nil {
		return
	}
	now := time.Now()
	var entries []store.Entry
	for _, mv := range moves {
		var msg string
		switch {
		case mv.To == "":
			msg = fmt.Sprintf("slot %d waits: no ready node (it ran on %s)", mv.Slot.Slot, mv.From)
		case mv.From == "":
			msg = fmt.Sprintf("slot %d placed on %s", mv.Slot.Slot, mv.To)
		default:
			msg = fmt.Sprintf("slot %d moved from %s, which is down, to %s", mv.Slot.Slot, mv.From, mv.To)
		}
		entries = append(entries, store.Entry{Time: now, Project: mv.Slot.Project, Service: mv.Slot.Service,
			Slot: mv.Slot.Slot, Action: "place", Reason: mv.Reason, Message: msg})
	}
	_, _ = st.Append(entries...)
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
	for _, a := range []struct{ name, short string }{
		{"cordon", "Keep a node from taking new replicas; it keeps those it runs"},
		{"drain", "Move a node's replicas to other nodes, and keep it from taking new ones"},
		{"uncordon", "Let a cordoned or drained node take replicas again"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   a.name + " NODE",
			Short: a.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				msg, err := g.client().NodeAction(cmd.Context(), args[0], a.name)
				if err == nil {
					fmt.Println(msg)
				}
				return err
			},
		})
	}
	return cmd
}

// reportReplicas stores this node's replicas in etcd every second, for
// `tend ps` on the other nodes.
func reportReplicas(ctx context.Context, m *cluster.Member, sup *supervisor.Supervisor, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		reps, err := sup.Status(ctx, "")
		if err != nil {
			continue
		}
		var mine []supervisor.Replica
		for _, r := range reps {
			if r.Node == m.Node() || (r.Node == "" && r.Container != "") {
				mine = append(mine, r)
			}
		}
		b, _ := json.Marshal(mine)
		if err := m.Report(ctx, b); err != nil && ctx.Err() == nil {
			log.Debug("report replicas", "err", err)
		}
	}
}
