package platform

import (
	"math"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
