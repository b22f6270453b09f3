package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/metrics"
	"github.com/tend-sh/tend/internal/proxy"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/docker"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

func serveCommand(g *globals) *cobra.Command {
	var data, metricsAddr string
	var debug, inPlace, recoverStore bool
	var ops operateFlags // operate.go
	var cl clusterFlags  // cluster.go
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: supervise every project handed to it (stopping it leaves the stacks running)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return serve(cmd, g.socket, data, metricsAddr, inPlace, recoverStore, ops, cl, log)
		},
	}
	cmd.Flags().StringVar(&data, "data", defaultDataDir(), "directory for the desired state and the journal")
	cmd.Flags().BoolVar(&debug, "debug", false, "log at debug level")
	cmd.Flags().BoolVar(&inPlace, "restart-in-place", true, "run each replica's command under tend's shim, so a crash is restarted inside its container in milliseconds (needs a statically linked tend)")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", "", "also serve Prometheus /metrics over TCP on this address, e.g. 127.0.0.1:9180 (the API socket always serves GET /metrics)")
	cmd.Flags().BoolVar(&recoverStore, "recover-store", false, "start on a damaged store file: keep what can be read of it in a new one (the damaged file is moved aside, the loss journaled); without it tend refuses to start on one")
	ops.add(cmd)
	cl.add(cmd)
	return cmd
}

// serveMetrics serves h at /metrics on addr until ctx ends.
func serveMetrics(ctx context.Context, addr string, h http.Handler) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return errs.Wrap(errs.Invalid, fmt.Errorf("metrics: %w", err))
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func serve(cmd *cobra.Command, socket, data, metricsAddr string, inPlace, recoverStore bool, ops operateFlags, cl clusterFlags, log *slog.Logger) error {
	ctx := cmd.Context()
	if err := os.MkdirAll(data, 0o700); err != nil {
		return errs.Wrap(errs.Invalid, fmt.Errorf("data directory: %w", err))
	}
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return errs.Wrap(errs.Invalid, fmt.Errorf("socket directory: %w", err))
	}
	var st store.Store
	var sup *supervisor.Supervisor
	// In a cluster the state is etcd's (cluster.go); a single host keeps it in bbolt.
	var rt *docker.Docker
	member, err := cl.start(ctx, data, clusterHooks{store: func() store.Store { return st }, poke: func() {
		if sup != nil {
			sup.Poke()
		}
	}, retraffic: func() {
		if sup != nil {
			sup.Retraffic()
		}
	}, runtime: func() runtime.Runtime {
		if rt == nil {
			return nil
		}
		return rt
	}}, log)
	if err != nil {
		return err
	}
	if member != nil {
		defer member.Close()
		if st, err = clusterStore(member); err != nil {
			return err
		}
	} else if st, err = openBolt(data, recoverStore, log); err != nil {
		return err
	}
	defer st.Close()
	var dcfg docker.Config
	if inPlace {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find tend's own binary: %w", err)
		}
		dcfg.Shim = docker.ShimConfig{Dir: filepath.Join(data, "shim"), Binary: exe}
	}
	if member != nil {
		// The other nodes' proxies reach this node's replicas at its address.
		dcfg.PublishOn, _ = netip.ParseAddr(member.Self().Address)
	}
	rt, err = docker.New(ctx, dcfg)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err)
	}
	defer rt.Close()
	tokens, err := openTokens(data)
	if err != nil {
		return err
	}
	tcp, cert, err := ops.listenTLS(data, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	notifier, err := ops.notifier(st, data, reg, log)
	if err != nil {
		return err
	}
	l, err := api.Listen(socket)
	if err != nil {
		return err
	}
	traffic := proxy.NewManager(proxy.Config{Log: log, Registry: reg, Clock: clock.Real{},
		OnEvent: func(e proxy.Event) { sup.ProxyEvent(e) }})
	scfg := supervisor.Config{Runtime: rt, Store: st, Clock: clock.Real{}, Log: log, Traffic: traffic}
	if member != nil {
		scfg.Placement = member
	}
	sup = supervisor.New(scfg)
	own, err := metrics.New(reg, sup)
	if err != nil {
		return err
	}
	registerStoreMetrics(reg, sup)
	srv := &api.Server{Supervisor: sup, Store: st, Log: log, Version: version, Metrics: traffic.Handler(), Tokens: tokens, Registry: reg}
	if member != nil {
		srv.Cluster = member
	}
	log.Info("tend serving", "socket", socket, "data", data, "engine_api", rt.APIVersion(), "version", version)

	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return rt.Run(ctx) })
	eg.Go(func() error { return sup.Run(ctx) })
	eg.Go(func() error { return traffic.Run(ctx) })
	from := metrics.Last(st)
	eg.Go(func() error { return own.Follow(ctx, st, from) })
	if metricsAddr != "" {
		eg.Go(func() error { return serveMetrics(ctx, metricsAddr, traffic.Handler()) })
	}
	eg.Go(func() error { return srv.Serve(ctx, l) })
	eg.Go(func() error { return serveTLS(ctx, srv, tcp, cert) })
	eg.Go(func() error { return notifier.Run(ctx) })
	if member != nil {
		eg.Go(func() error { return member.Run(ctx) })
		eg.Go(func() error { reportReplicas(ctx, member, sup, log); return nil }) // cluster.go
	}
	err = eg.Wait()
	_ = os.Remove(socket)
	log.Info("tend stopped; the stacks keep running")
	return err
}

// openBolt opens the single host's store under data.
func openBolt(data string, recoverStore bool, log *slog.Logger) (store.Store, error) {
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(data, "tend.db"), Recover: recoverStore})
	var damage *store.Damage
	if errors.As(err, &damage) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w (is another tend using --data %s?)", err, data)
	}
	if d := st.Recovered(); d != nil {
		log.Warn("store recovered", "problems", d.Problems, "lost", d.Lost, "found", d.Found, "kept", d.Kept)
		if _, err := st.Append(store.Entry{Time: time.Now(), Action: "store-recovered", Reason: "damaged", Message: d.Summary()}); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// registerStoreMetrics exposes whether the store takes writes: a full disk
// under --data is seen in the metrics, not only in the log.
func registerStoreMetrics(reg prometheus.Registerer, sup *supervisor.Supervisor) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tend_store_writable",
		Help: "1 while the store takes writes; 0 while it refuses them (a full disk under --data)"},
		func() float64 {
			if sup.StoreStatus().Writable {
				return 1
			}
			return 0
		}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tend_journal_held_entries",
		Help: "journal entries held in memory until the store takes writes again"},
		func() float64 { return float64(sup.StoreStatus().HeldEntries) }))
}
