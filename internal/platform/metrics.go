package platform

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var descMemoryLimit = prometheus.NewDesc("surge_memory_limit_bytes",
	"The Go soft memory limit (--memory-limit or GOMEMLIMIT); absent when there is none. "+
		"Compare go_memstats_sys_bytes - go_memstats_heap_released_bytes with it.", nil, nil)

// memoryLimit reports the Go memory limit as it is at scrape time, so a
// limit set after the registry was built is seen, and "no limit" is no
// series rather than 8 EiB.
type memoryLimit struct{}

// Describe implements prometheus.Collector.
func (memoryLimit) Describe(ch chan<- *prometheus.Desc) { ch <- descMemoryLimit }

// Collect implements prometheus.Collector.
func (memoryLimit) Collect(ch chan<- prometheus.Metric) {
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		ch <- prometheus.MustNewConstMetric(descMemoryLimit, prometheus.GaugeValue, float64(l))
	}
}

// newRegistry is the process's Prometheus registry: the Go runtime
// (goroutines, heap, GC), the process (RSS, CPU, file descriptors) and the
// memory limit; the gateway and the runtime host add theirs.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), memoryLimit{})
	return reg
}

// startMetrics serves the registry on GET /metrics at addr (--metrics).
func (p *Platform) startMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{}))
	// Addr is only what MetricsURL reports: Serve(ln) does not read it.
	p.metrics = &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.metrics.Serve(ln) }()
	p.log.Info("metrics listening", "addr", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

// MetricsURL is the address of --metrics ("" when there is none).
func (p *Platform) MetricsURL() string {
	if p.metrics == nil {
		return ""
	}
	return "http://" + p.metrics.Addr
}
