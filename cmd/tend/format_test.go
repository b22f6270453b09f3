package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

func TestFormat(t *testing.T) {
	row := psRow{Replica: supervisor.Replica{Project: "demo", Service: "web", Slot: 2, State: "running", Restarts: 3},
		Scale: &supervisor.ScaleStatus{Desired: 4}}
	e := store.Entry{Seq: 9, Time: time.Date(2026, 12, 7, 15, 4, 5, 0, time.UTC), Service: "web", Action: "restart", Reason: "exited"}
	tests := []struct {
		format string
		v      any
		want   string
	}{
		{"{{.Service}}/{{.Slot}} {{.State}} {{.Restarts}} of {{.Scale.Desired}}", row, "web/2 running 3 of 4\n"},
		{"{{upper .Service}} {{json .Slot}}", row, "WEB 2\n"},
		{`{{.Time.Format "15:04:05"}} {{.Action}}/{{.Reason}} {{truncate .Service 2}}`, e, "15:04:05 restart/exited we\n"},
	}
	for _, tt := range tests {
		tmpl, err := parseFormat(tt.format, false)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := printFormatted(&b, tmpl, tt.v); err != nil || b.String() != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.format, b.String(), err, tt.want)
		}
	}
	var usage usageError
	if _, err := parseFormat("{{.Service}}", true); !errors.As(err, &usage) {
		t.Errorf("--format with --json: %v, want a usage error", err)
	}
	if _, err := parseFormat("{{.Service", false); !errors.As(err, &usage) {
		t.Errorf("a broken template: %v, want a usage error", err)
	}
	tmpl, _ := parseFormat("{{.Nope}}", false)
	if err := printFormatted(&strings.Builder{}, tmpl, e); !errors.As(err, &usage) || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("an unknown field: %v, want a usage error naming it", err)
	}
}
