package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime/docker"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

func serveCommand(g *globals) *cobra.Command {
	var data string
	var debug, inPlace bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: supervise every project handed to it (stopping it leaves the stacks running)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return serve(cmd, g.socket, data, inPlace, log)
		},
	}
	cmd.Flags().StringVar(&data, "data", defaultDataDir(), "directory for the desired state and the journal")
	cmd.Flags().BoolVar(&debug, "debug", false, "log at debug level")
	cmd.Flags().BoolVar(&inPlace, "restart-in-place", true, "run each replica's command under tend's shim, so a crash is restarted inside its container in milliseconds (needs a statically linked tend)")
	return cmd
}

func serve(cmd *cobra.Command, socket, data string, inPlace bool, log *slog.Logger) error {
	ctx := cmd.Context()
	if err := os.MkdirAll(data, 0o700); err != nil {
		return errs.Wrap(errs.Invalid, fmt.Errorf("data directory: %w", err))
	}
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return errs.Wrap(errs.Invalid, fmt.Errorf("socket directory: %w", err))
	}
	st, err := store.OpenBolt(store.BoltConfig{Path: filepath.Join(data, "tend.db")})
	if err != nil {
		return fmt.Errorf("%w (is another tend using --data %s?)", err, data)
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
	rt, err := docker.New(ctx, dcfg)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err)
	}
	defer rt.Close()
	l, err := api.Listen(socket)
	if err != nil {
		return err
	}
	sup := supervisor.New(supervisor.Config{Runtime: rt, Store: st, Clock: clock.Real{}, Log: log})
	srv := &api.Server{Supervisor: sup, Store: st, Log: log, Version: version}
	log.Info("tend serving", "socket", socket, "data", data, "engine_api", rt.APIVersion(), "version", version)

	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return rt.Run(ctx) })
	eg.Go(func() error { return sup.Run(ctx) })
	eg.Go(func() error { return srv.Serve(ctx, l) })
	err = eg.Wait()
	_ = os.Remove(socket)
	log.Info("tend stopped; the stacks keep running")
	return err
}
