package host

import (
	"math"
	"math/bits"
	goruntime "runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgefn/surge/runtime/wire"
)

// The console's figures travel in the heartbeat because, with several
// hosts, a gateway cannot read their Prometheus collectors: per function,
// cumulative calls and errors on this host (the gateway takes rates from
// two successive heartbeats) and the p99 duration of the calls since the
// previous heartbeat; per host, memory and goroutines.

// latencyBuckets are log-linear: one per microsecond below 4 µs, then
// four per power of two, so a reported percentile is at most 25% above
// the true one; the last bucket holds everything from about three days up.
const (
	latencySub     = 4
	latencyBuckets = 38 * latencySub
)

// fnFigures are one function's counters on this host. They outlive its
// revisions (a redeploy does not reset calls/s), and the hot path touches
// them with one or two atomic adds and nothing else.
type fnFigures struct {
	calls   atomic.Uint64
	errors  atomic.Uint64
	latency [latencyBuckets]atomic.Uint64
	// last is the latency snapshot of the previous heartbeat; only the
	// heartbeat goroutine reads and writes it.
	last [latencyBuckets]uint64
}

// latencyBucket is the bucket of duration d.
func latencyBucket(d time.Duration) int {
	us := uint64(d / time.Microsecond)
	if us < latencySub {
		return int(us)
	}
	exp := bits.Len64(us) - 1                  // us in [2^exp, 2^(exp+1)), exp >= 2
	sub := int(us>>(exp-2)) & (latencySub - 1) // which quarter of it
	return min(latencySub+(exp-2)*latencySub+sub, latencyBuckets-1)
}

// latencyUpper is the upper bound of bucket i, the value reported for a
// percentile that falls in it.
func latencyUpper(i int) time.Duration {
	if i < latencySub {
		return time.Duration(i+1) * time.Microsecond
	}
	exp, sub := (i-latencySub)/latencySub+2, (i-latencySub)%latencySub
	us := (uint64(latencySub) + uint64(sub) + 1) << (exp - 2)
	return time.Duration(us) * time.Microsecond
}

// observe records one call or batch that took d.
func (f *fnFigures) observe(d time.Duration) { f.latency[latencyBucket(d)].Add(1) }

// p99 is the 99th percentile of what was observed since the previous
// call, 0 when nothing was; only the heartbeat calls it.
func (f *fnFigures) p99() time.Duration {
	var delta [latencyBuckets]uint64
	var total uint64
	for i := range f.latency {
		v := f.latency[i].Load()
		delta[i] = v - f.last[i]
		f.last[i] = v
		total += delta[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(float64(total) * 0.99))
	var seen uint64
	for i, n := range delta {
		seen += n
		if seen >= rank {
			return latencyUpper(i)
		}
	}
	return latencyUpper(latencyBuckets - 1)
}

// figures holds every function's fnFigures by name.
type figures struct {
	mu  sync.Mutex
	fns map[string]*fnFigures
}

// forFunction is the figures of function name, made on first use.
func (fs *figures) forFunction(name string) *fnFigures {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.fns == nil {
		fs.fns = map[string]*fnFigures{}
	}
	f := fs.fns[name]
	if f == nil {
		f = new(fnFigures)
		fs.fns[name] = f
	}
	return f
}

// fill adds the console's figures to st, a heartbeat about to go out.
func (fs *figures) fill(st *wire.HostStatus) {
	fs.mu.Lock()
	for name, s := range st.Functions {
		if f := fs.fns[name]; f != nil {
			s.Calls, s.Errors = f.calls.Load(), f.errors.Load()
			s.P99Ms = float64(f.p99().Microseconds()) / 1000
			st.Functions[name] = s
		}
	}
	fs.mu.Unlock()
	st.MemoryBytes, st.Goroutines = processMemory(), goruntime.NumGoroutine()
}

// processMemory is the memory the Go runtime holds from the OS, less the
// heap it gave back: close to the resident size, without the
// stop-the-world of runtime.ReadMemStats.
func processMemory() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 || s[1].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}
