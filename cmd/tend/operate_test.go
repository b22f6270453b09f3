package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/errs"
)

func TestDaemonConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) *operateFlags {
		path := filepath.Join(dir, "tend.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return &operateFlags{config: path}
	}
	cfg, err := write(`
webhooks:
  - url: https://hooks.example/T/B/secret
    format: slack
    services: [web, shop/api]
    actions: [restart]
webhook_grouping: {wait: 2s, interval: 30s}
`).loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Webhooks) != 1 || cfg.Webhooks[0].Format != "slack" || len(cfg.Webhooks[0].Services) != 2 ||
		cfg.WebhookGrouping.Wait != 2*time.Second || cfg.WebhookGrouping.Interval != 30*time.Second {
		t.Errorf("config %+v", cfg)
	}
	_, err = write("webhooks:\n  - url: http://x\n    formats: slack\n").loadConfig()
	if errs.KindOf(err) != errs.Invalid || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "line 3: field formats not found") {
		t.Errorf("unknown key: %q", err)
	}
	if cfg, err := (&operateFlags{}).loadConfig(); err != nil || len(cfg.Webhooks) != 0 {
		t.Errorf("no --config: %+v, %v", cfg, err)
	}
}
