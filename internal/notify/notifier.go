package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tend-sh/tend/internal/clock"
	"github.com/tend-sh/tend/internal/store"
)

// Retry says how a failed delivery is tried again. Zero values are defaults.
type Retry struct {
	Initial time.Duration // the first wait (1s), doubling each attempt
	Max     time.Duration // the longest wait (30s)
	// Window is how long a payload is tried before it is dropped (10m): a
	// receiver down for less loses nothing.
	Window time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Initial <= 0 {
		r.Initial = time.Second
	}
	if r.Max <= 0 {
		r.Max = 30 * time.Second
	}
	if r.Window <= 0 {
		r.Window = 10 * time.Minute
	}
	return r
}

// backoff is the wait after the given number of failed attempts.
func (r Retry) backoff(attempts int) time.Duration {
	d := r.Initial
	for i := 1; i < attempts && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

// Config of a Notifier. Store and Clock are required.
type Config struct {
	Webhooks []Webhook
	Store    store.Store // the journal followed
	// After is where delivery starts: entries with a larger sequence number
	// (the daemon passes the journal's end when it starts).
	After uint64
	// Progress is a file where each webhook's place in the journal is kept;
	// a webhook found in it goes on from there instead of After, skipping
	// entries older than Retry.Window. "": nothing kept.
	Progress string
	Clock    clock.Clock
	Log      *slog.Logger // nil: none
	Grouping Grouping
	Retry    Retry
	// QueueSize bounds the payloads waiting per webhook (1000); when full the
	// oldest is dropped and counted in the next payload's Dropped.
	QueueSize int
	// Timeout bounds one POST (10s).
	Timeout time.Duration
	// Client sends the POSTs; nil: a client of its own.
	Client *http.Client
	// UserAgent of the POSTs ("tend").
	UserAgent string
	// Registry gets the deliveries' Prometheus collectors; nil: none shown.
	Registry prometheus.Registerer
}

// Notifier delivers the journal's new entries to the webhooks.
type Notifier struct {
	cfg     Config
	metrics *metrics
}

// New returns a notifier; Run starts it.
func New(cfg Config) *Notifier {
	cfg.Grouping = cfg.Grouping.withDefaults()
	cfg.Retry = cfg.Retry.withDefaults()
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "tend"
	}
	return &Notifier{cfg: cfg, metrics: newMetrics(cfg.Registry)}
}

// Run follows the journal from Config.After (or each webhook's kept place,
// Config.Progress) and delivers to every webhook until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	if len(n.cfg.Webhooks) == 0 {
		return nil
	}
	prog, err := loadProgress(n.cfg.Progress)
	if err != nil {
		return err
	}
	defer n.cfg.Client.CloseIdleConnections()
	eg, ctx := errgroup.WithContext(ctx)
	for _, w := range n.cfg.Webhooks {
		h := &hook{n: n, w: w, batch: newBatcher(n.cfg.Grouping), after: prog.resume(w.URL, n.cfg.After), progress: prog, label: Redact(w.URL)}
		eg.Go(func() error { return h.run(ctx) })
	}
	return eg.Wait()
}

// hook is one webhook's delivery: its groups, its outbox, where it is in the journal.
type hook struct {
	n        *Notifier
	w        Webhook
	batch    *batcher
	after    uint64
	outbox   []outgoing
	dropped  int // payloads dropped since the last delivery
	progress *progress
	label    string // the webhook in logs and metrics
}

// outgoing is a payload and its attempts so far.
type outgoing struct {
	p        Payload
	first    time.Time // of the first attempt; zero before it
	attempts int
	next     time.Time // no attempt before
}

func (h *hook) run(ctx context.Context) error {
	clk := h.n.cfg.Clock
	for {
		changed := h.n.cfg.Store.Appended() // taken before the read, so no entry falls between
		wake := h.read(clk.Now())
		payloads, next := h.batch.due(clk.Now())
		h.enqueue(payloads)
		if retry := h.send(ctx); !retry.IsZero() && (next.IsZero() || retry.Before(next)) {
			next = retry
		}
		if err := h.progress.save(h.w.URL, h.done()); err != nil {
			h.n.cfg.Log.Error("webhook: keep progress", "err", err)
		}
		if !wake.IsZero() && (next.IsZero() || wake.Before(next)) {
			next = wake
		}
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = clk.After(next.Sub(clk.Now()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-timer:
		}
	}
}

// read takes the journal's new entries into the groups; a failed read is
// tried again in a second (the returned time).
func (h *hook) read(now time.Time) time.Time {
	entries, err := h.n.cfg.Store.Journal(store.Query{After: h.after})
	if err != nil {
		h.n.cfg.Log.Error("webhook: read journal", "webhook", h.label, "err", err)
		return now.Add(time.Second)
	}
	for _, e := range entries {
		h.after = e.Seq
		// Past the retry window (a daemon resuming after a long stop): it would be dropped anyway.
		if h.w.wants(e) && now.Sub(e.Time) < h.n.cfg.Retry.Window {
			h.batch.add(e, now)
		}
	}
	return time.Time{}
}

// done is the journal's number up to which every entry this webhook wants
// was delivered (or given up on): the first one still held, less one.
func (h *hook) done() uint64 {
	low := h.after
	held := func(p *Payload) {
		if s := p.Entries[0].Seq - 1; s < low {
			low = s
		}
	}
	for i := range h.outbox {
		held(&h.outbox[i].p)
	}
	for _, gr := range h.batch.groups {
		if gr.pending != nil {
			held(gr.pending)
		}
	}
	return low
}

func (h *hook) enqueue(ps []Payload) {
	for _, p := range ps {
		if len(h.outbox) == h.n.cfg.QueueSize {
			h.outbox = h.outbox[1:]
			h.dropped++
			h.n.metrics.deliveries.WithLabelValues(h.label, "dropped").Inc()
			h.n.cfg.Log.Warn("webhook: queue full, oldest notification dropped", "webhook", h.label, "queue", h.n.cfg.QueueSize)
		}
		h.outbox = append(h.outbox, outgoing{p: p})
	}
	h.n.metrics.queued.WithLabelValues(h.label).Set(float64(len(h.outbox)))
}

// send delivers the outbox in order until it is empty or a delivery fails;
// it returns when to try again (zero: nothing waits).
func (h *hook) send(ctx context.Context) time.Time {
	clk, retry := h.n.cfg.Clock, h.n.cfg.Retry
	for len(h.outbox) > 0 && ctx.Err() == nil {
		o := &h.outbox[0]
		now := clk.Now()
		if o.next.After(now) {
			return o.next
		}
		if o.first.IsZero() {
			o.first = now
		}
		o.p.Dropped = h.dropped
		err := h.post(ctx, o.p)
		_, permanent := err.(refused)
		if err == nil {
			h.n.metrics.deliveries.WithLabelValues(h.label, "delivered").Inc()
			h.n.metrics.entries.WithLabelValues(h.label).Add(float64(o.p.Count))
			h.outbox, h.dropped = h.outbox[1:], 0
			h.n.metrics.queued.WithLabelValues(h.label).Set(float64(len(h.outbox)))
			continue
		}
		o.attempts++
		now = clk.Now()
		if permanent || now.Sub(o.first) >= retry.Window {
			h.n.cfg.Log.Warn("webhook: notification dropped", "webhook", h.label, "attempts", o.attempts, "err", err,
				"project", o.p.Project, "service", o.p.Service, "entries", o.p.Count)
			h.outbox = h.outbox[1:]
			h.dropped++
			h.n.metrics.deliveries.WithLabelValues(h.label, "dropped").Inc()
			h.n.metrics.queued.WithLabelValues(h.label).Set(float64(len(h.outbox)))
			continue
		}
		h.n.metrics.deliveries.WithLabelValues(h.label, "failed").Inc()
		o.next = now.Add(retry.backoff(o.attempts))
		h.n.cfg.Log.Debug("webhook: delivery failed, will retry", "webhook", h.label, "attempts", o.attempts, "err", err)
		return o.next
	}
	return time.Time{}
}

// refused is a delivery not worth trying again.
type refused struct{ error }

// post makes one delivery. A 4xx answer but 408 and 429 is refused: the
// receiver does not want the payload, and asking again would not change its mind.
func (h *hook) post(ctx context.Context, p Payload) error {
	body, err := h.w.body(p)
	if err != nil {
		return refused{err}
	}
	ctx, cancel := context.WithTimeout(ctx, h.n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.w.URL, bytes.NewReader(body))
	if err != nil {
		return refused{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", h.n.cfg.UserAgent)
	resp, err := h.n.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %s", redactErr(err, h.w.URL))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("answered %s", resp.Status)
	}
	return refused{fmt.Errorf("answered %s", resp.Status)}
}
