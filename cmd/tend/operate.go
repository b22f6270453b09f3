package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/tend-sh/tend/internal/access"
	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/notify"
	"github.com/tend-sh/tend/internal/store"
)

// operateFlags are the flags of `tend serve` for reaching and watching the
// daemon from elsewhere: the HTTPS listener, its certificate, webhooks.
type operateFlags struct {
	listen, tlsCert, tlsKey string
	webhooks                []string
	config                  string
}

// daemonConfig is the file of `tend serve --config`.
type daemonConfig struct {
	// Webhooks are told of the journal's entries (internal/notify).
	Webhooks []notify.Webhook `yaml:"webhooks"`
	// WebhookGrouping: wait (5s) gathers a new group, interval (1m) is the
	// least time between two deliveries of one service.
	WebhookGrouping struct {
		Wait     time.Duration `yaml:"wait"`
		Interval time.Duration `yaml:"interval"`
	} `yaml:"webhook_grouping"`
}

func (o *operateFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.listen, "listen", "", "also serve the API over HTTPS on this address, e.g. 0.0.0.0:8443; each request needs Authorization: Bearer TOKEN (tend token create)")
	cmd.Flags().StringVar(&o.tlsCert, "tls-cert", "", "certificate (PEM) of the HTTPS listener; without it and --tls-key, a self-signed one made once in --data")
	cmd.Flags().StringVar(&o.tlsKey, "tls-key", "", "private key (PEM) of --tls-cert")
	cmd.Flags().StringArrayVar(&o.webhooks, "webhook", nil, "POST the journal's entries, grouped per service, to this URL as JSON (repeatable; filters and the slack format in --config)")
	cmd.Flags().StringVar(&o.config, "config", "", "the daemon's config file (YAML): a webhooks: list of {url, format: json|slack, services, actions}")
}

// loadConfig reads the daemon's config file, if one was given.
func (o *operateFlags) loadConfig() (daemonConfig, error) {
	var cfg daemonConfig
	if o.config == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(o.config)
	if err != nil {
		return cfg, errs.Wrap(errs.Invalid, fmt.Errorf("--config: %w", err))
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		// yaml.v3 words its errors over several lines, naming Go types: one line, in the file's words.
		msg := strings.NewReplacer("yaml: unmarshal errors:\n  ", "", "\n  ", "; ", " in type main.daemonConfig", "", " in type notify.Webhook", "").Replace(err.Error())
		return cfg, errs.E(errs.Invalid, "%s: %s", o.config, msg)
	}
	return cfg, nil
}

// notifier delivers the journal's entries to the webhooks of the flags and
// the config file: from where each was when the daemon last stopped, kept in
// --data, or for a new one from the journal's current end.
func (o *operateFlags) notifier(st store.Store, data string, reg prometheus.Registerer, log *slog.Logger) (*notify.Notifier, error) {
	cfg, err := o.loadConfig()
	if err != nil {
		return nil, err
	}
	hooks := cfg.Webhooks
	for _, u := range o.webhooks {
		hooks = append(hooks, notify.Webhook{URL: u})
	}
	for _, h := range hooks {
		if err := h.Check(); err != nil {
			return nil, err
		}
		log.Info("webhook", "url", notify.Redact(h.URL), "format", h.Format, "services", h.Services, "actions", h.Actions)
	}
	last, err := st.Journal(store.Query{Limit: 1})
	if err != nil {
		return nil, err
	}
	var after uint64
	if len(last) == 1 {
		after = last[0].Seq
	}
	g := notify.Grouping{Wait: cfg.WebhookGrouping.Wait, Interval: cfg.WebhookGrouping.Interval}
	return notify.New(notify.Config{Webhooks: hooks, Store: st, After: after, Progress: filepath.Join(data, "webhooks.json"),
		Clock: clock.Real{}, Log: log, Grouping: g, UserAgent: "tend/" + version, Registry: reg}), nil
}

// openTokens opens the tokens file of the data directory.
func openTokens(data string) (*access.Tokens, error) {
	return access.OpenTokens(filepath.Join(data, "tokens.json"))
}

// listenTLS opens the HTTPS listener, with the certificate given or the
// data directory's own, and logs the certificate's fingerprint so clients can pin it.
func (o *operateFlags) listenTLS(data string, log *slog.Logger) (net.Listener, *access.Certificate, error) {
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, nil, errs.E(errs.Invalid, "--tls-cert and --tls-key go together")
	}
	if o.listen == "" {
		if o.tlsCert != "" {
			return nil, nil, errs.E(errs.Invalid, "--tls-cert needs --listen")
		}
		return nil, nil, nil
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return nil, nil, errs.E(errs.Invalid, "--listen %q: %v", o.listen, err)
	}
	var cert access.Certificate
	how := "given"
	if o.tlsCert != "" {
		cert, err = access.LoadCertificate(o.tlsCert, o.tlsKey)
	} else {
		hostname, _ := os.Hostname()
		cert, err = access.SelfSigned(filepath.Join(data, "tls"), []string{host, hostname}, time.Now())
		how = "self-signed, " + filepath.Join(data, "tls", "cert.pem")
		if cert.Created {
			how = "self-signed, made now: " + filepath.Join(data, "tls", "cert.pem")
		}
	}
	if err != nil {
		return nil, nil, errs.Wrap(errs.Invalid, err)
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, nil, errs.Wrap(errs.Invalid, fmt.Errorf("--listen: %w", err))
	}
	log.Info("https listening", "addr", l.Addr().String(), "certificate", how, "sha256_fingerprint", cert.Fingerprint)
	return l, &cert, nil
}

// serveTLS serves the API on the HTTPS listener l, if any, until ctx ends.
func serveTLS(ctx context.Context, srv *api.Server, l net.Listener, cert *access.Certificate) error {
	if l == nil {
		return nil
	}
	return srv.ServeTLS(ctx, l, cert.TLS)
}
