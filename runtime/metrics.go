package runtime

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the runtime's Prometheus collectors, registered once per host.
type Metrics struct {
	Invocations  *prometheus.CounterVec
	Errors       *prometheus.CounterVec
	Duration     *prometheus.HistogramVec
	BatchSize    *prometheus.HistogramVec
	InFlight     *prometheus.GaugeVec
	Pending      *prometheus.GaugeVec
	Redeliveries *prometheus.CounterVec
	DeadLetters  *prometheus.CounterVec
	Instances    *prometheus.GaugeVec
}

// NewMetrics creates the runtime collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_function_invocations_total", Help: "Calls and stream messages handled, by function.",
		}, []string{"function"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_function_errors_total", Help: "Calls and stream messages that ended in an error, by function and code.",
		}, []string{"function", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "surge_function_duration_seconds", Help: "Handler duration per call or per batch.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"function"}),
		BatchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "surge_function_batch_size", Help: "Messages per stream batch.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000},
		}, []string{"function"}),
		InFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "surge_function_in_flight", Help: "Calls or batches being handled now.",
		}, []string{"function"}),
		Pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "surge_consumer_pending", Help: "Stream messages not yet delivered to the function's durable consumer.",
		}, []string{"function"}),
		Redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_consumer_redeliveries_total", Help: "Stream messages received again after a failure or timeout.",
		}, []string{"function"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_dead_letters_total", Help: "Messages sent to the DLQ stream, by function.",
		}, []string{"function"}),
		Instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "surge_function_instances", Help: "Function instances running on this host.",
		}, []string{"function"}),
	}
	if reg != nil {
		reg.MustRegister(m.Invocations, m.Errors, m.Duration, m.BatchSize, m.InFlight,
			m.Pending, m.Redeliveries, m.DeadLetters, m.Instances)
	}
	return m
}

// fnMetrics are the collectors of one function, resolved once so the hot
// path does no label lookups.
type fnMetrics struct {
	m            *Metrics
	name         string
	invocations  prometheus.Counter
	duration     prometheus.Observer
	batchSize    prometheus.Observer
	inFlight     prometheus.Gauge
	redeliveries prometheus.Counter
	deadLetters  prometheus.Counter
	pending      prometheus.Gauge
}

func (m *Metrics) forFunction(name string) *fnMetrics {
	return &fnMetrics{
		m:            m,
		name:         name,
		invocations:  m.Invocations.WithLabelValues(name),
		duration:     m.Duration.WithLabelValues(name),
		batchSize:    m.BatchSize.WithLabelValues(name),
		inFlight:     m.InFlight.WithLabelValues(name),
		redeliveries: m.Redeliveries.WithLabelValues(name),
		deadLetters:  m.DeadLetters.WithLabelValues(name),
		pending:      m.Pending.WithLabelValues(name),
	}
}

func (f *fnMetrics) errorf(code string) { f.m.Errors.WithLabelValues(f.name, code).Inc() }
