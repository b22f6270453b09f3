package proxy

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// durationBuckets span 0.5 ms to 10 s, the range that tells a healthy
// replica from a struggling one.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// metrics are the Prometheus collectors. The hot path never looks a label
// set up: each replica keeps its children (see replicaStats).
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	ejections *prometheus.CounterVec
	tcpConns  *prometheus.CounterVec
	gatherer  prometheus.Gatherer
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger, inflight prometheus.Collector) *metrics {
	if reg == nil {
		r := prometheus.NewRegistry()
		reg = r
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_proxy_requests_total",
			Help: "Requests (attempts, retries included) proxied to a replica, by status code; replica is empty when none was ready.",
		}, []string{"project", "service", "replica", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tend_proxy_request_duration_seconds",
			Help:    "Time from picking a replica to the end of its response.",
			Buckets: durationBuckets,
		}, []string{"project", "service", "replica"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_proxy_retries_total",
			Help: "Requests retried on another replica.",
		}, []string{"project", "service"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_proxy_ejections_total",
			Help: "Times a replica was ejected from rotation for failing.",
		}, []string{"project", "service", "replica"}),
		tcpConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_proxy_tcp_connections_total",
			Help: "TCP connections proxied to a replica.",
		}, []string{"project", "service", "replica"}),
	}
	m.requests = register(reg, log, m.requests)
	m.duration = register(reg, log, m.duration)
	m.retries = register(reg, log, m.retries)
	m.ejections = register(reg, log, m.ejections)
	m.tcpConns = register(reg, log, m.tcpConns)
	register(reg, log, inflight)
	m.gatherer = prometheus.DefaultGatherer
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	}
	return m
}

// register registers c, or adopts the equal collector already registered
// (a second Manager on one registry shares the counters).
func register[C prometheus.Collector](reg prometheus.Registerer, log *slog.Logger, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	log.Warn("proxy: metrics not registered", "err", err)
	return c
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// inflightCollector reports tend_proxy_in_flight from the replicas' own
// counters, so the hot path updates one atomic, not a gauge as well.
type inflightCollector struct {
	desc *prometheus.Desc
	each func(func(project, service, replica string, n int64))
}

func (c *inflightCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *inflightCollector) Collect(ch chan<- prometheus.Metric) {
	c.each(func(project, service, replica string, n int64) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), project, service, replica)
	})
}

func newInflightCollector(each func(func(project, service, replica string, n int64))) *inflightCollector {
	return &inflightCollector{
		desc: prometheus.NewDesc("tend_proxy_in_flight",
			"Requests (HTTP) or connections (TCP) in flight to a replica.",
			[]string{"project", "service", "replica"}, nil),
		each: each,
	}
}

// counterRef boxes a Counter for an atomic pointer.
type counterRef struct{ prometheus.Counter }

// codeCounters caches a replica's request counter per status code.
type codeCounters struct {
	vec   *prometheus.CounterVec // curried with project, service, replica
	codes [500]atomic.Pointer[counterRef]
	mu    sync.Mutex
}

// inc counts one request that ended with code.
func (c *codeCounters) inc(code int) {
	i := code - 100
	if i < 0 || i >= len(c.codes) {
		c.vec.WithLabelValues(strconv.Itoa(code)).Inc()
		return
	}
	if r := c.codes[i].Load(); r != nil {
		r.Inc()
		return
	}
	c.mu.Lock()
	r := c.codes[i].Load()
	if r == nil {
		r = &counterRef{c.vec.WithLabelValues(strconv.Itoa(code))}
		c.codes[i].Store(r)
	}
	c.mu.Unlock()
	r.Inc()
}
