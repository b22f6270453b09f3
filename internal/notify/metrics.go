package notify

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the deliveries, labelled by webhook as Redact writes it.
type metrics struct {
	deliveries *prometheus.CounterVec // by result: delivered, failed (to be retried), dropped
	entries    *prometheus.CounterVec // journal entries delivered
	queued     *prometheus.GaugeVec   // payloads waiting in the outbox
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry() // counted, shown nowhere
	}
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_webhook_deliveries_total",
			Help: "Webhook POSTs by result: delivered, failed (tried again later) or dropped (queue full, refused, or retries out).",
		}, []string{"webhook", "result"}),
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_webhook_entries_total",
			Help: "Journal entries delivered to a webhook, grouped into fewer POSTs.",
		}, []string{"webhook"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tend_webhook_queued",
			Help: "Payloads waiting to be delivered to a webhook.",
		}, []string{"webhook"}),
	}
	m.deliveries = adopt(reg, m.deliveries)
	m.entries = adopt(reg, m.entries)
	m.queued = adopt(reg, m.queued)
	return m
}

// adopt registers c, or takes the equal collector already registered.
func adopt[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	return c
}
