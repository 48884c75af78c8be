package host

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the host's Prometheus collectors, registered once per host.
type metrics struct {
	invocations  *prometheus.CounterVec
	errors       *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	batchSize    *prometheus.HistogramVec
	inFlight     *prometheus.GaugeVec
	pending      *prometheus.GaugeVec
	redeliveries *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	instances    *prometheus.GaugeVec
	// Autoscaling (spec.autoscale).
	desired     *prometheus.GaugeVec
	scaleEvents *prometheus.CounterVec
	// figures are what the heartbeat tells the console (figures.go).
	figures figures
}

// newMetrics creates the host's collectors and registers them with reg.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_function_invocations_total", Help: "Calls and stream messages handled, by function.",
		}, []string{"function"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_function_errors_total", Help: "Calls and stream messages that ended in an error, by function and code.",
		}, []string{"function", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "surge_function_duration_seconds", Help: "Handler duration per call or per batch.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"function"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "surge_function_batch_size", Help: "Messages per stream batch.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000},
		}, []string{"function"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "surge_function_in_flight", Help: "Calls or batches being handled now.",
		}, []string{"function"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "surge_consumer_pending", Help: "Stream messages not yet delivered to the function's durable consumer, as of the last batch this host received (surge_consumer_backlog_messages on a gateway is the server's count now).",
		}, []string{"function"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_consumer_redeliveries_total", Help: "Stream messages received again after a failure or timeout.",
		}, []string{"function"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_dead_letters_total", Help: "Messages sent to the DLQ stream, by function.",
		}, []string{"function"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "surge_function_instances", Help: "Function instances running on this host.",
		}, []string{"function"}),
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "surge_function_replicas_desired", Help: "Instances the autoscaler wants on this host (spec.autoscale only).",
		}, []string{"function"}),
		scaleEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_function_scale_events_total", Help: "Autoscaler changes of a function's instances on this host, by direction (up, down).",
		}, []string{"function", "direction"}),
	}
	if reg != nil {
		reg.MustRegister(m.invocations, m.errors, m.duration, m.batchSize, m.inFlight,
			m.pending, m.redeliveries, m.deadLetters, m.instances, m.desired, m.scaleEvents)
	}
	return m
}

// fnMetrics are the collectors of one function, resolved once so the hot
// path does no label lookups.
type fnMetrics struct {
	m            *metrics
	name         string
	invocations  prometheus.Counter
	duration     prometheus.Observer
	batchSize    prometheus.Observer
	inFlight     prometheus.Gauge
	redeliveries prometheus.Counter
	deadLetters  prometheus.Counter
	pending      prometheus.Gauge
	desired      prometheus.Gauge
	fig          *fnFigures
}

func (m *metrics) forFunction(name string) *fnMetrics {
	return &fnMetrics{
		m:            m,
		name:         name,
		invocations:  m.invocations.WithLabelValues(name),
		duration:     m.duration.WithLabelValues(name),
		batchSize:    m.batchSize.WithLabelValues(name),
		inFlight:     m.inFlight.WithLabelValues(name),
		redeliveries: m.redeliveries.WithLabelValues(name),
		deadLetters:  m.deadLetters.WithLabelValues(name),
		pending:      m.pending.WithLabelValues(name),
		desired:      m.desired.WithLabelValues(name),
		fig:          m.figures.forFunction(name),
	}
}

// forwarding is f for the loop that sends a request function's async
// calls on to its instances: the console's figures (nil fig) count those
// calls once, where the instances run them.
func (f *fnMetrics) forwarding() *fnMetrics {
	c := *f
	c.fig = nil
	return &c
}

func (f *fnMetrics) errorf(code string) {
	f.m.errors.WithLabelValues(f.name, code).Inc()
	if f.fig != nil {
		f.fig.errors.Add(1)
	}
}

// handled records n calls or stream messages, handled in one go that took d.
func (f *fnMetrics) handled(n int, d time.Duration) {
	f.invocations.Add(float64(n))
	f.duration.Observe(d.Seconds())
	if f.fig != nil {
		f.fig.calls.Add(uint64(n))
		f.fig.observe(d)
	}
}
