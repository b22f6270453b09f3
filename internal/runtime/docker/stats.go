package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/tend-sh/tend/internal/errs"
)

// CPUTime reads one sample of the container's stats (one-shot: the engine
// answers at once instead of waiting a second for a second sample).
func (d *Docker) CPUTime(ctx context.Context, id string) (time.Duration, time.Time, error) {
	r, err := d.c.ContainerStats(ctx, id, client.ContainerStatsOptions{})
	if err != nil {
		if gone(err) {
			return 0, time.Time{}, errs.Wrap(errs.NotFound, fmt.Errorf("docker: stats of %s: %w", short(id), err))
		}
		return 0, time.Time{}, fmt.Errorf("docker: stats of %s: %w", short(id), err)
	}
	defer r.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&st); err != nil {
		return 0, time.Time{}, fmt.Errorf("docker: stats of %s: %w", short(id), err)
	}
	if st.Read.IsZero() {
		return 0, time.Time{}, errs.E(errs.NotFound, "docker: stats of %s: the container is not running", short(id))
	}
	return time.Duration(st.CPUStats.CPUUsage.TotalUsage), st.Read, nil
}
