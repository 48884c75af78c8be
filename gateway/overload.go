package gateway

import (
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// Overload protection: every sync function gets an adaptive limit on the
// calls this gateway has in flight to it. A call over the limit is refused
// at once (503 overloaded, Retry-After) instead of joining a queue at the
// runtime host where it would wait for a slot: admitted calls keep close to
// their unloaded latency, the excess costs a few microseconds each.
//
// The limit follows the calls' latency, the way TCP congestion control (and
// Netflix concurrency-limits' Gradient2, Envoy's adaptive concurrency
// filter) follow round-trip times, with Little's law for the cut:
//
//   - baseline is the lowest mean latency of a window seen lately: the
//     function's latency without queueing.
//   - target = baseline + max(baseline/4, limitFloor) is the latency
//     admitted calls may have; the floor keeps the jitter of fast
//     functions on a busy machine (GC pauses, a few scheduler quanta, a
//     closed-loop benchmark of 64 connections on two cores) from reading
//     as overload: shedding starts where queueing costs tens of ms.
//   - Every window (at least limitWindow and two baselines long, with
//     limitMinSamples completions): when more than half of its calls took
//     longer than target and a tenth at least waited for a slot at the
//     host (Surge-Slot-Wait: the delay is the function's queue, not a
//     machine short of CPU), or a host answered overloaded, the limit becomes
//     throughput x target, at most halving per window. That is the
//     in-flight count at which Little's law gives the target latency at
//     the best rate the function completed calls lately. When the mean is
//     in the lower half of the allowance, at most a quarter of the calls
//     took longer than target and the limit was in use, the limit grows:
//     by sqrt(limit) per window, by 1 within limitCalm of a cut.
//
// The baseline is kept across windows and may only rise at the end of a
// limitPeriod that had a window refusing nothing, so sustained overload
// (whose windows all run near target) cannot ratchet it up; a new revision
// of the function starts a new limiter.
//
// The hot path (acquire, release) is atomics only; the one completion that
// closes a window does the arithmetic, under a flag no one waits for.

// Limiter defaults.
const (
	limitInitial    = 128
	limitMin        = 2
	limitMax        = 10000
	limitWindow     = 50 * time.Millisecond
	limitMaxWindow  = time.Second
	limitMinSamples = 10
	limitPeriod     = 30 * time.Second
	limitFloor      = 20 * time.Millisecond
	limitCalm       = time.Second
)

// monoNow is a monotonic clock in nanoseconds since the process started;
// tests inject their own.
var monoEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// limiter is the adaptive in-flight limit of one function's revision.
type limiter struct {
	now func() int64

	inflight atomic.Int64
	limit    atomic.Int64
	target   atomic.Int64 // ns; 0 until a baseline is known
	base     atomic.Int64 // ns: baseline, published for metrics

	// The current window, filled by every call.
	peak     atomic.Int64 // highest in-flight count admitted
	sum      atomic.Int64 // latency of completed calls, ns
	count    atomic.Int64
	slow     atomic.Int64 // completions slower than target
	queued   atomic.Int64 // completions that waited for a slot at the host
	refused  atomic.Int64
	overload atomic.Int64 // hosts' overloaded answers and timeouts
	start    atomic.Int64 // when the window began
	window   atomic.Int64 // ns the window lasts at least

	updating atomic.Bool

	// Touched only by the goroutine that holds updating.
	baseline    time.Duration
	periodStart int64
	periodMin   time.Duration
	// Highest completion rate (calls per ns) of a window in this period
	// and the last: what the function can do.
	periodRate, lastRate float64
	periodFree           bool // a window of the period refused nothing
	lastCut              int64
}

// newLimiter starts at initial calls in flight (limitInitial when 0).
func newLimiter(now func() int64, initial int) *limiter {
	if now == nil {
		now = monoNow
	}
	if initial <= 0 {
		initial = limitInitial
	}
	l := &limiter{now: now}
	t := now()
	l.limit.Store(min(limitMax, max(limitMin, int64(initial))))
	l.window.Store(int64(limitWindow))
	l.start.Store(t)
	l.periodStart = t
	l.lastCut = t - int64(limitCalm)
	return l
}

// acquire admits a call (and returns its start time) or refuses it.
func (l *limiter) acquire() (int64, bool) {
	n := l.inflight.Add(1)
	if n > l.limit.Load() {
		l.inflight.Add(-1)
		l.refused.Add(1)
		return 0, false
	}
	if n > l.peak.Load() {
		l.peak.Store(n) // racy max: a lost update only understates one window's peak
	}
	return l.now(), true
}

// Outcomes of a call, as release counts them.
const (
	// callDone is a reply from the function (success or its own error):
	// its latency is a sample.
	callDone = iota
	// callQueued is a reply from the function to a call that waited for
	// one of its concurrency slots at the host (Surge-Slot-Wait): a
	// sample, and evidence that the function's own queue is building.
	callQueued
	// callOverloaded is a host's overloaded answer or a timeout: a sign of
	// queueing even before latencies show it.
	callOverloaded
	// callOther is a failure that says nothing about the function's speed
	// (no instances, the client went away).
	callOther
)

// release ends a call admitted at start.
func (l *limiter) release(start int64, outcome int) {
	l.inflight.Add(-1)
	now := l.now()
	switch outcome {
	case callDone, callQueued:
		if outcome == callQueued {
			l.queued.Add(1)
		}
		rtt := now - start
		l.sum.Add(rtt)
		l.count.Add(1)
		if tg := l.target.Load(); tg > 0 && rtt > tg {
			l.slow.Add(1)
		}
	case callOverloaded:
		l.overload.Add(1)
	}
	if now-l.start.Load() >= l.window.Load() && l.updating.CompareAndSwap(false, true) {
		l.update(now)
		l.updating.Store(false)
	}
}

// update closes the window if it has enough to go on and moves the limit.
func (l *limiter) update(now int64) {
	elapsed := now - l.start.Load()
	count := l.count.Load()
	over := l.overload.Load()
	if count < limitMinSamples && over == 0 && elapsed < int64(limitMaxWindow) {
		return
	}
	l.start.Store(now)
	count = l.count.Swap(0)
	sum := l.sum.Swap(0)
	slow := l.slow.Swap(0)
	queued := l.queued.Swap(0)
	over = l.overload.Swap(0)
	refused := l.refused.Swap(0)
	peak := l.peak.Swap(l.inflight.Load())
	lim := l.limit.Load()
	if count == 0 {
		if over > 0 {
			l.limit.Store(max(limitMin, lim/2))
		}
		return
	}
	avg := time.Duration(sum / count)

	if l.baseline == 0 || avg < l.baseline {
		l.baseline = avg
	}
	if l.periodMin == 0 || avg < l.periodMin {
		l.periodMin = avg
	}
	rate := float64(count) / float64(elapsed) // calls per ns
	l.periodRate = max(l.periodRate, rate)
	if refused == 0 {
		l.periodFree = true
	}
	if now-l.periodStart >= int64(limitPeriod) {
		if l.periodFree {
			l.baseline = l.periodMin
		}
		l.periodStart, l.periodMin, l.periodFree = now, 0, false
		l.lastRate, l.periodRate = l.periodRate, 0
	}

	// A window spans two baseline latencies at least, so that its
	// completions show the function's rate rather than one burst of them.
	l.window.Store(int64(max(limitWindow, 2*l.baseline)))
	l.base.Store(int64(l.baseline))
	allowance := max(l.baseline/4, limitFloor)
	target := l.baseline + allowance
	oldTarget := time.Duration(l.target.Swap(int64(target)))
	next := lim
	switch {
	case (oldTarget > 0 && 2*slow > count && 10*queued >= count) || over > 0:
		// The median call was slower than target (the median, not the
		// mean, so a function whose latency has a long tail of its own,
		// retried compare-and-sets say, is not taken for a queue), and at
		// least a tenth of the calls waited for a slot at the host: the
		// delay is the function's own queue, which refusing shortens.
		// Latency without slot waits is a machine short of CPU (the
		// gateway's own HTTP work, other processes): refusals cost CPU
		// too, and clients that retry at once would only get slower.
		// At the best rate seen lately, not this window's: refusals
		// cost CPU too, and a rate they depress would cut the limit again
		// and again (a closed-loop client retrying at once turns shedding
		// into a spiral down to limitMin); BBR keeps a max filter on its
		// bandwidth estimate for the same reason.
		best := max(l.periodRate, l.lastRate)
		next = min(lim, max(lim/2, int64(best*float64(target))))
		l.lastCut = now
	case 2*peak >= lim && (10*queued < count || (avg <= l.baseline+allowance/2 && 4*slow <= count)):
		// Growth when the limit was in use and either latency is well
		// under target or the calls are not waiting at the hosts (the
		// limit is not what holds them back, so it must not stay in the
		// way). By one call per window within limitCalm of a cut (TCP's
		// congestion avoidance after slow start): the effect of a larger
		// limit shows a service time later, and a faster climb overshoots
		// into the queue again, a sawtooth whose peaks would be the p99.
		step := int64(1)
		if now-l.lastCut >= int64(limitCalm) {
			step = max(1, int64(math.Sqrt(float64(lim))))
		}
		next = lim + step
	}
	l.limit.Store(min(limitMax, max(limitMin, next)))
}

// limiters holds the limiter of each function's current revision, so a new
// routing table keeps the limits it learned.
type limiters struct {
	mu  sync.Mutex
	now func() int64
	by  map[string]*limiter
	rev map[string]string
}

func newLimiters(now func() int64) *limiters {
	return &limiters{now: now, by: map[string]*limiter{}, rev: map[string]string{}}
}

// attach gives every sync target of t its limiter: the one it had if the
// revision is the same, a fresh one otherwise (a new revision may be
// faster or slower); limiters of removed functions are dropped.
func (ls *limiters) attach(t *Table) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	seen := make(map[string]bool, len(t.targets))
	for name, tg := range t.targets {
		if tg.Stream {
			continue
		}
		seen[name] = true
		l := ls.by[name]
		if l == nil || ls.rev[name] != tg.Revision {
			// Twice one host's slots: a burst from cold is let through
			// (more hosts add slots, and the limit grows), yet a step to
			// overload queues at most a host's worth before the first cut.
			l = newLimiter(ls.now, 2*tg.Slots)
			ls.by[name], ls.rev[name] = l, tg.Revision
		}
		tg.limit = l
	}
	for name := range ls.by {
		if !seen[name] {
			delete(ls.by, name)
			delete(ls.rev, name)
		}
	}
}

// gate is the gateway-wide bound on calls in flight (--max-inflight): the
// memory a burst can hold (bodies, goroutines, NATS buffers) stays bounded
// whatever the per-function limits have learned. 0 means no bound.
type gate struct {
	max      int64
	inflight atomic.Int64
}

func (g *gate) enter() bool {
	if g == nil || g.max <= 0 {
		return true
	}
	if g.inflight.Add(1) > g.max {
		g.inflight.Add(-1)
		return false
	}
	return true
}

func (g *gate) leave() {
	if g != nil && g.max > 0 {
		g.inflight.Add(-1)
	}
}

// errOverloaded is the refusal of a call over a limit; the error handler
// adds Retry-After: 1.
func errOverloaded(function string) *runtime.Error {
	return &runtime.Error{Status: http.StatusServiceUnavailable, Code: wire.CodeOverloaded,
		Msg: "function " + function + " is at its concurrency limit; retry later"}
}

// errGatewayOverloaded is the refusal of a call over --max-inflight.
var errGatewayOverloaded = &runtime.Error{Status: http.StatusServiceUnavailable, Code: wire.CodeOverloaded,
	Msg: "the gateway is at its limit of calls in flight; retry later"}

var (
	descLimit = prometheus.NewDesc("surge_gateway_function_limit",
		"Adaptive limit of sync calls in flight to a function from this gateway.", []string{"function"}, nil)
	descInFlight = prometheus.NewDesc("surge_gateway_function_in_flight",
		"Sync calls in flight to a function from this gateway.", []string{"function"}, nil)
	descBaseline = prometheus.NewDesc("surge_gateway_function_baseline_seconds",
		"A function's latency without queueing, as its limiter learned it (0 until known).", []string{"function"}, nil)
)

// Describe implements prometheus.Collector.
func (ls *limiters) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLimit
	ch <- descInFlight
	ch <- descBaseline
}

// Collect implements prometheus.Collector: each function's limit, calls in
// flight and baseline, read at scrape time (nothing on the hot path).
func (ls *limiters) Collect(ch chan<- prometheus.Metric) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for name, l := range ls.by {
		ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(l.limit.Load()), name)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(l.inflight.Load()), name)
		ch <- prometheus.MustNewConstMetric(descBaseline, prometheus.GaugeValue, time.Duration(l.base.Load()).Seconds(), name)
	}
}
