package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/spec"
	"github.com/tend-sh/tend/internal/supervisor"
)

func buildCommand(g *globals) *cobra.Command {
	var cf composeFlags
	cmd := &cobra.Command{
		Use:   "build [SERVICE...]",
		Short: "Build the images of the services with a build section (or of those named), starting nothing",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cf.load(cmd.Context())
			if err != nil {
				return err
			}
			names, err := buildTargets(p, args)
			if err != nil {
				return err
			}
			if len(names) == 0 {
				fmt.Println("nothing to build: no service has a build section")
				return nil
			}
			return buildImages(cmd.Context(), g.client(), p, names, true, os.Stdout)
		},
	}
	cf.add(cmd)
	return cmd
}

// buildTargets are the services `tend build` builds: those named (a named
// service without a build section is skipped, as compose does), or every
// service with a build section.
func buildTargets(p *spec.Project, args []string) ([]string, error) {
	if len(args) == 0 {
		return buildable(p), nil
	}
	var out []string
	for _, name := range args {
		svc, ok := p.Service(name)
		switch {
		case !ok:
			return nil, errs.E(errs.Invalid, "no such service: %s", name)
		case svc.Build == nil:
			fmt.Fprintf(os.Stderr, "service %s has no build section (image %s); skipped\n", name, svc.Image)
		default:
			out = append(out, name)
		}
	}
	return out, nil
}

// buildable names the services of p that have a build section, in name order.
func buildable(p *spec.Project) []string {
	var out []string
	for _, s := range p.Services {
		if s.Build != nil {
			out = append(out, s.Name)
		}
	}
	return out
}

// buildImages has the daemon make the image of each named service: built when
// always is set or the image is missing, else taken as it is. The build's
// output goes to out as it comes. Each image's ID is recorded in p, where the
// spec hash picks it up, so replicas of a rebuilt image are replaced by the
// next up. Services that share an image are built once (Validate makes sure
// they share the build section too). The first failure ends it.
func buildImages(ctx context.Context, c *api.Client, p *spec.Project, names []string, always bool, out io.Writer) error {
	ids := map[string]string{} // by image
	for _, name := range names {
		svc, ok := p.Service(name)
		if !ok || svc.Build == nil {
			continue
		}
		if id, ok := ids[svc.Image]; ok {
			svc.Build.ImageID = id
			continue
		}
		progress := &headed{w: out, header: fmt.Sprintf("building service %s: image %s from %s\n", name, svc.Image, svc.Build)}
		req := supervisor.BuildRequest{Project: p.Name, Service: name, Image: svc.Image, Build: *svc.Build, Always: always}
		res, err := c.Build(ctx, req, progress)
		if err != nil {
			return err
		}
		if res.Built {
			fmt.Fprintf(out, "built image %s for service %s\n", svc.Image, name)
		}
		svc.Build.ImageID = res.ID
		ids[svc.Image] = res.ID
	}
	return nil
}

// headed writes a header before the first output: only a build that runs
// is announced.
type headed struct {
	w       io.Writer
	header  string
	started bool
}

func (h *headed) Write(p []byte) (int, error) {
	if !h.started {
		h.started = true
		if _, err := io.WriteString(h.w, h.header); err != nil {
			return 0, err
		}
	}
	return h.w.Write(p)
}
