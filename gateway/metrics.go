package gateway

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
	// sync counts the sync calls sent to functions, by how (via): local,
	// to an instance in this process, or nats, to the queue group.
	sync *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_gateway_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "surge_gateway_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "surge_gateway_in_flight", Help: "HTTP requests being served now.",
		}),
		sync: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_gateway_sync_calls_total",
			Help: "Sync calls sent to functions, by function and how: via=local (an instance in this process, no NATS hop) or via=nats (the function's queue group).",
		}, []string{"function", "via"}),
	}
	reg.MustRegister(m.requests, m.latency, m.inFlight, m.sync)
	return m
}

// codes caches status strings so the hot path does not format them.
var codes = func() (out [600]string) {
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return
}()

func (m *metrics) observe(route string, status int, d time.Duration) {
	code := "0"
	if status > 0 && status < len(codes) {
		code = codes[status]
	}
	m.requests.WithLabelValues(route, code).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}
