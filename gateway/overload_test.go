package gateway

import (
	"testing"
	"time"

	"github.com/surgefn/surge/manifests"
)

// simClock is the limiter's injected clock.
type simClock struct{ t int64 }

func (c *simClock) now() int64 { return c.t }

// simServer is a function behind the limiter: slots calls at once, each
// taking service; admitted calls beyond the slots wait in a FIFO queue, as
// they do in a runtime host's subscription.
type simServer struct {
	l       *limiter
	clock   *simClock
	slots   int
	service time.Duration

	queue   []int64 // start times of admitted calls waiting for a slot
	running []call
	// Counted from measureFrom on.
	measureFrom int64
	admitted    int
	refused     int
	latencies   []time.Duration
}

type call struct {
	start, done int64
	queued      bool // waited for a slot
}

// run offers rate calls/s for d, in steps of 100µs.
func (s *simServer) run(rate float64, d time.Duration) {
	const step = 100 * time.Microsecond
	perStep := rate * step.Seconds()
	owed := 0.0
	for end := s.clock.t + int64(d); s.clock.t < end; s.clock.t += int64(step) {
		// Completions first, then the calls that can take a slot.
		kept := s.running[:0]
		for _, c := range s.running {
			if c.done <= s.clock.t {
				outcome := callDone
				if c.queued {
					outcome = callQueued
				}
				s.l.release(c.start, outcome)
				if c.start >= s.measureFrom {
					s.latencies = append(s.latencies, time.Duration(s.clock.t-c.start))
				}
				continue
			}
			kept = append(kept, c)
		}
		s.running = kept
		for owed += perStep; owed >= 1; owed-- {
			start, ok := s.l.acquire()
			switch {
			case !ok:
				if s.clock.t >= s.measureFrom {
					s.refused++
				}
			default:
				if s.clock.t >= s.measureFrom {
					s.admitted++
				}
				s.queue = append(s.queue, start)
			}
		}
		for len(s.running) < s.slots && len(s.queue) > 0 {
			s.running = append(s.running, call{start: s.queue[0], done: s.clock.t + int64(s.service), queued: s.clock.t > s.queue[0]})
			s.queue = s.queue[1:]
		}
	}
}

func (s *simServer) reset() {
	s.measureFrom = s.clock.t
	s.admitted, s.refused, s.latencies = 0, 0, nil
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	c := append([]time.Duration(nil), ds...)
	for i := 1; i < len(c); i++ { // insertion sort: small slices, no import
		for j := i; j > 0 && c[j] < c[j-1]; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
	return c[int(q*float64(len(c)-1))]
}

func newSim(slots int, service time.Duration) *simServer {
	clock := &simClock{t: int64(time.Hour)}
	return &simServer{l: newLimiter(clock.now, 0), clock: clock, slots: slots, service: service}
}

func TestLimiterAdmitsUpToItsLimit(t *testing.T) {
	clock := &simClock{}
	l := newLimiter(clock.now, 0)
	l.limit.Store(3)
	var starts []int64
	for i := 0; i < 3; i++ {
		s, ok := l.acquire()
		if !ok {
			t.Fatalf("call %d refused under the limit of 3", i+1)
		}
		starts = append(starts, s)
	}
	if _, ok := l.acquire(); ok {
		t.Fatal("a 4th call was admitted over the limit of 3")
	}
	if got := l.inflight.Load(); got != 3 {
		t.Fatalf("in flight = %d after a refusal, want 3 (a refused call must not hold a slot)", got)
	}
	l.release(starts[0], callDone)
	if _, ok := l.acquire(); !ok {
		t.Fatal("a call was refused after one of three released its slot")
	}
}

// At three times the function's capacity the limiter must settle where the
// function's queue stays short: admitted calls keep near their unloaded
// latency, most of the excess is refused, and the function stays busy.
func TestLimiterShedsAtThreeTimesCapacity(t *testing.T) {
	// A slow function: the allowance over the baseline (limitFloor or a
	// quarter of it) leaves room within 2x.
	const slots = 16
	service := 100 * time.Millisecond
	capacity := float64(slots) / service.Seconds() // 160/s
	s := newSim(slots, service)

	s.run(capacity/4, 2*time.Second) // unloaded: learns the baseline
	s.reset()
	s.run(capacity/4, time.Second)
	unloaded := quantile(s.latencies, 0.99)

	s.run(3*capacity, time.Second) // the step: let the limit settle
	s.reset()
	s.run(3*capacity, 10*time.Second)
	p99 := quantile(s.latencies, 0.99)
	t.Logf("unloaded p99 %s; at 3x: admitted p99 %s, %d admitted, %d refused, limit %d",
		unloaded, p99, s.admitted, s.refused, s.l.limit.Load())
	if p99 > 2*unloaded {
		t.Errorf("admitted p99 at 3x capacity = %s, want <= 2x the unloaded %s", p99, unloaded)
	}
	done := float64(len(s.latencies)) / 10
	if done < 0.85*capacity {
		t.Errorf("completed %.0f/s at 3x load, want >= 85%% of the capacity %.0f/s (the limit starves the function)", done, capacity)
	}
	if share := float64(s.refused) / float64(s.admitted+s.refused); share < 0.5 {
		t.Errorf("refused %.0f%% of calls at 3x capacity, want most of the excess (>= 50%%)", share*100)
	}
}

// Sustained overload through several baseline periods must not let the
// baseline creep up to the overloaded latency.
func TestLimiterBaselineHoldsUnderSustainedOverload(t *testing.T) {
	service := 100 * time.Millisecond
	s := newSim(4, service) // 40/s
	s.run(10, 2*time.Second)
	s.run(120, 3*limitPeriod)
	s.reset()
	s.run(120, 5*time.Second)
	if p99 := quantile(s.latencies, 0.99); p99 > 2*service {
		t.Errorf("admitted p99 after %s of overload = %s, want <= %s (baseline %s)", 3*limitPeriod, p99, 2*service, s.l.baseline)
	}
}

// A function with room to spare must get a limit above the concurrency
// its callers use, so nothing is refused in normal operation.
func TestLimiterGrowsWhenLatencyHolds(t *testing.T) {
	s := newSim(100000, 5*time.Millisecond) // no queueing at any load
	s.run(200000, 3*time.Second)            // 1000 calls in flight
	s.reset()
	s.run(200000, time.Second)
	if s.refused > 0 {
		t.Errorf("%d calls refused with latency at its baseline; limit %d, want >= 1000", s.refused, s.l.limit.Load())
	}
}

func TestLimiterKeptPerRevision(t *testing.T) {
	fn := func(rev string) manifests.Function {
		return manifests.Function{APIVersion: manifests.APIVersion, Kind: manifests.KindFunction,
			Metadata: manifests.Metadata{Name: "f"},
			Spec: manifests.Spec{Handler: "echo", Trigger: manifests.Trigger{Subject: "fn.f"}, Concurrency: 1,
				Config: []byte(`{"rev":"` + rev + `"}`)}}
	}
	ls := newLimiters(nil)
	build := func(fns ...manifests.Function) *Table {
		tb, errs := Build(fns)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		ls.attach(tb)
		return tb
	}
	tg := func(tb *Table) *Target { t.Helper(); x, _ := tb.Target("f"); return x }
	first := tg(build(fn("1")))
	if first.limit == nil {
		t.Fatal("a sync target got no limiter")
	}
	if same := tg(build(fn("1"))); same.limit != first.limit {
		t.Error("a new table of the same revision got a fresh limiter: it would forget what it learned")
	}
	if next := tg(build(fn("2"))); next.limit == first.limit {
		t.Error("a new revision kept the old revision's limiter")
	}
	build()
	if len(ls.by) != 0 {
		t.Errorf("%d limiters kept after the function was removed", len(ls.by))
	}
}

func TestGateBoundsInFlight(t *testing.T) {
	g := &gate{max: 2}
	if !g.enter() || !g.enter() {
		t.Fatal("refused under the bound")
	}
	if g.enter() {
		t.Fatal("a third call entered a gate of 2")
	}
	g.leave()
	if !g.enter() {
		t.Fatal("refused after one call left")
	}
	var none *gate
	if !none.enter() || !(&gate{max: -1}).enter() {
		t.Fatal("an unbounded gate refused")
	}
}

// BenchmarkLimiter is the cost the limiter adds to every sync call.
func BenchmarkLimiter(b *testing.B) {
	l := newLimiter(nil, 0)
	l.limit.Store(1 << 40)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, _ := l.acquire()
			l.release(s, callDone)
		}
	})
}

// A window whose throughput fell (refusals retried at once eat the CPU the
// function needs) must not cut the limit below what the function did at
// its best lately: cutting at the depressed rate would depress it again,
// down to limitMin.
func TestLimiterCutsAtTheBestRecentRate(t *testing.T) {
	clock := &simClock{t: int64(time.Hour)}
	l := newLimiter(clock.now, 0)
	outcome := callDone
	// window feeds n completions of latency lat spread over d.
	window := func(n int, lat, d time.Duration) {
		for i := 0; i < n; i++ {
			clock.t += int64(d) / int64(n)
			start, ok := l.acquire()
			if !ok {
				// Refused: the limit is what is under test, not this call.
				continue
			}
			l.release(start-int64(lat), outcome)
		}
	}
	outcome = callDone
	window(40, 10*time.Millisecond, 100*time.Millisecond) // baseline 10ms at 400/s
	window(40, 10*time.Millisecond, 100*time.Millisecond)
	best := 400.0 * (10*time.Millisecond + limitFloor).Seconds() // 12 calls
	outcome = callQueued
	for i, n := 0, 40; i < 30; i++ {
		window(n, 200*time.Millisecond, 100*time.Millisecond) // overloaded, and slower each time
		if n > limitMinSamples {
			n--
		}
	}
	if got := l.limit.Load(); float64(got) < best {
		t.Errorf("limit after 30 overloaded windows at a falling rate = %d, want >= %.0f (the best rate x target)", got, best)
	}
}

// Latency far over target without calls waiting for a slot at the host is
// a machine short of CPU, not the function's queue: the limit must hold,
// since refusing would not shorten anything.
func TestLimiterHoldsWithoutSlotWaits(t *testing.T) {
	clock := &simClock{t: int64(time.Hour)}
	l := newLimiter(clock.now, 0)
	feed := func(n int, lat time.Duration, outcome int) {
		for i := 0; i < n; i++ {
			clock.t += int64(5 * time.Millisecond)
			start, _ := l.acquire()
			l.release(start-int64(lat), outcome)
		}
	}
	feed(40, 5*time.Millisecond, callDone) // baseline 5ms
	before := l.limit.Load()
	feed(400, 200*time.Millisecond, callDone)
	if got := l.limit.Load(); got < before {
		t.Errorf("limit fell from %d to %d on slow calls that never waited for a slot", before, got)
	}
	feed(400, 200*time.Millisecond, callQueued)
	if got := l.limit.Load(); got >= before {
		t.Errorf("limit %d did not fall on slow calls that waited for slots (was %d)", got, before)
	}
}
