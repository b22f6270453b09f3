package main

import (
	"context"
	"fmt"

	"github.com/tend-sh/tend/internal/store"
)

// rolledBack fails `up --wait` when a release it handed over was rolled back
// meanwhile (a newer version of the project stored by the rollback): the
// stack is up, but not as asked.
func rolledBack(ctx context.Context, g *globals, project string, version int) error {
	var failed []store.Entry
	ours := false
	err := g.client().Events(ctx, store.Query{Project: project, Limit: 1000}, false, func(e store.Entry) error {
		switch {
		case e.Action == "up" && versionOf(e.Message) == version:
			ours, failed = true, nil // the journal from our version on
		case ours && e.Action == "rollback" && e.Reason != "done" && e.Reason != "started" && e.Reason != "requested":
			failed = append(failed, e)
		}
		return nil
	})
	if err != nil || len(failed) == 0 {
		return err
	}
	e := failed[0]
	return errNotReady{fmt.Sprintf("project %s is up, but %s was rolled back: %s", project, e.Service, e.Message)}
}

// versionOf reads the version from an up entry's message ("desired state version 7: ...").
func versionOf(msg string) int {
	var v int
	if _, err := fmt.Sscanf(msg, "desired state version %d:", &v); err != nil {
		return 0
	}
	return v
}
