package host

import (
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/wire"
)

// TestLatencyBuckets: every duration falls in a bucket whose bounds hold
// it, at most 25% wide, and the buckets are in order.
func TestLatencyBuckets(t *testing.T) {
	prev := 0
	for us := int64(0); us < 1<<34; us = us*9/8 + 1 {
		d := time.Duration(us) * time.Microsecond
		i := latencyBucket(d)
		if i < prev {
			t.Fatalf("bucket of %s = %d, below the bucket of a shorter duration (%d)", d, i, prev)
		}
		prev = i
		upper := latencyUpper(i)
		lower := time.Duration(0)
		if i > 0 {
			lower = latencyUpper(i - 1)
		}
		if d < lower || d >= upper {
			t.Fatalf("%s in bucket %d = [%s, %s)", d, i, lower, upper)
		}
		if us >= latencySub && float64(upper) > 1.25*float64(lower) {
			t.Fatalf("bucket %d = [%s, %s) is more than 25%% wide", i, lower, upper)
		}
	}
	if got := latencyBucket(1000 * time.Hour); got != latencyBuckets-1 {
		t.Errorf("bucket of 1000h = %d, want the last, %d", got, latencyBuckets-1)
	}
}

// TestFiguresP99 checks the percentile of a heartbeat window, that the
// window restarts at every heartbeat, and the counters fill sends.
func TestFiguresP99(t *testing.T) {
	var fs figures
	f := fs.forFunction("fn")
	if fs.forFunction("fn") != f {
		t.Fatal("forFunction made a second figures for the same name")
	}
	// 990 fast calls and 10 slow ones: the p99 is the slowest of the fast.
	for range 990 {
		f.observe(time.Millisecond)
	}
	for range 10 {
		f.observe(time.Second)
	}
	f.calls.Add(1000)
	f.errors.Add(3)
	st := wire.HostStatus{Functions: map[string]wire.FunctionStatus{"fn": {Instances: 1}, "other": {Instances: 2}}}
	fs.fill(&st)
	got := st.Functions["fn"]
	if got.Calls != 1000 || got.Errors != 3 || got.Instances != 1 {
		t.Errorf("fn = %+v", got)
	}
	if got.P99Ms < 1 || got.P99Ms > 1.25 {
		t.Errorf("p99 = %vms, want 1ms to 1.25ms", got.P99Ms)
	}
	if o := st.Functions["other"]; o.Calls != 0 || o.P99Ms != 0 || o.Instances != 2 {
		t.Errorf("other = %+v", o)
	}
	if st.MemoryBytes < 1<<20 || st.Goroutines < 1 {
		t.Errorf("memory %d, goroutines %d", st.MemoryBytes, st.Goroutines)
	}
	// The next window holds only what came after.
	for range 100 {
		f.observe(2 * time.Second)
	}
	fs.fill(&st)
	if p := st.Functions["fn"].P99Ms; p < 2000 || p > 2500 {
		t.Errorf("second window p99 = %vms, want 2s to 2.5s", p)
	}
	fs.fill(&st)
	if p := st.Functions["fn"].P99Ms; p != 0 {
		t.Errorf("empty window p99 = %vms, want 0", p)
	}
}

// BenchmarkHandledFigures is the console's share of the hot path: two
// atomic adds per call, no allocation.
func BenchmarkHandledFigures(b *testing.B) {
	var fs figures
	f := fs.forFunction("fn")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f.calls.Add(1)
			f.observe(1500 * time.Microsecond)
		}
	})
}
