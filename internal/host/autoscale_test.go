package host

import (
	"slices"
	"testing"
	"time"

	"github.com/surgefn/surge/manifests"
)

// repeat is n samples of signal.
func repeat(signal int64, n int) []int64 { return slices.Repeat([]int64{signal}, n) }

// square is a signal that is hi for half samples, then lo for half, n times.
func square(hi, lo int64, half, n int) []int64 {
	var out []int64
	for range n {
		out = append(append(out, repeat(hi, half)...), repeat(lo, half)...)
	}
	return out
}

// TestScaler drives the decision logic with one sample a second on a fake
// clock: up after two samples that want more, down only after a whole
// cool-down that wanted less, and no flapping on a signal that hovers at a
// threshold or oscillates faster than the cool-down.
func TestScaler(t *testing.T) {
	auto := &manifests.Autoscale{Min: 1, Max: 8, TargetBacklog: 10, Cooldown: manifests.Duration(30 * time.Second)}
	tests := []struct {
		name       string
		start      int
		signals    []int64
		wantAt     map[int]int // sample index -> instances after it
		wantLast   int
		wantEvents int
	}{
		{name: "idle stays at min", start: 1, signals: repeat(0, 100), wantLast: 1},
		{name: "up after two samples", start: 1, signals: []int64{5, 35, 35}, wantAt: map[int]int{0: 1, 1: 1, 2: 4}, wantLast: 4, wantEvents: 1},
		{name: "one burst is not a trend", start: 1, signals: []int64{35, 0, 35, 0, 35, 5}, wantLast: 1},
		{name: "up to the least of the streak", start: 1, signals: []int64{80, 30}, wantLast: 3, wantEvents: 1},
		{name: "clamped to max", start: 1, signals: repeat(1_000_000, 2), wantLast: 8, wantEvents: 1},
		{name: "start inside the bounds", start: 20, signals: repeat(75, 2), wantAt: map[int]int{1: 8}, wantLast: 8},
		{name: "down only after the cool-down", start: 4, signals: repeat(0, 31),
			wantAt: map[int]int{28: 4, 29: 1}, wantLast: 1, wantEvents: 1},
		{name: "down to the most wanted during the cool-down", start: 4, signals: append(append(repeat(0, 10), 25), repeat(0, 19)...),
			wantAt: map[int]int{28: 4, 29: 3}, wantLast: 3, wantEvents: 1},
		{name: "a sample at the count restarts the cool-down", start: 4, signals: append(append(repeat(0, 20), 40), repeat(0, 30)...),
			wantAt: map[int]int{49: 4, 50: 1}, wantLast: 1, wantEvents: 1},
		{name: "hovering at the threshold above the count does not flap", start: 2, signals: square(21, 19, 1, 300), wantLast: 2},
		{name: "hovering at the threshold below the count does not flap", start: 3, signals: square(21, 19, 1, 300), wantLast: 3},
		{name: "oscillating faster than the cool-down scales up once", start: 1, signals: square(40, 0, 5, 30),
			wantAt: map[int]int{1: 4}, wantLast: 4, wantEvents: 1},
		{name: "back down once it ends", start: 1, signals: append(square(40, 0, 5, 30), repeat(0, 30)...),
			wantAt: map[int]int{323: 4, 324: 1}, wantLast: 1, wantEvents: 2},
		{name: "negative signal is no load", start: 2, signals: repeat(-5, 40), wantLast: 1, wantEvents: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
			s := newScaler(auto, auto.TargetBacklog, tt.start, now)
			prev, events := s.current, 0
			for i, sig := range tt.signals {
				now = now.Add(time.Second)
				got := s.observe(now, sig)
				if got != prev {
					events++
					prev = got
				}
				if want, ok := tt.wantAt[i]; ok && got != want {
					t.Errorf("after sample %d (signal %d): %d instances, want %d", i, sig, got, want)
				}
				if got < auto.Min || got > auto.Max {
					t.Fatalf("after sample %d: %d instances, outside %d..%d", i, got, auto.Min, auto.Max)
				}
			}
			if prev != tt.wantLast || events != tt.wantEvents {
				t.Errorf("ended at %d instances after %d changes, want %d after %d", prev, events, tt.wantLast, tt.wantEvents)
			}
		})
	}
}

// TestScalerWant is the count a signal calls for: ceil(signal/target)
// inside min..max.
func TestScalerWant(t *testing.T) {
	s := newScaler(&manifests.Autoscale{Min: 2, Max: 5, Cooldown: manifests.Duration(time.Second)}, 10, 2, time.Time{})
	for signal, want := range map[int64]int{0: 2, 1: 2, 20: 2, 21: 3, 30: 3, 31: 4, 50: 5, 51: 5, 1 << 62: 5} {
		if got := s.want(signal); got != want {
			t.Errorf("want(%d) = %d, want %d", signal, got, want)
		}
	}
}

// TestStartCount: a first deploy starts at spec.replicas; replacing an
// autoscaled revision keeps the count it reached, inside the new bounds.
func TestStartCount(t *testing.T) {
	fn := func(replicas, lo, hi int) *manifests.Function {
		f := &manifests.Function{Spec: manifests.Spec{Replicas: replicas, Trigger: manifests.Trigger{Stream: "S"}}}
		if hi > 0 {
			f.Spec.Autoscale = &manifests.Autoscale{Min: lo, Max: hi}
		}
		return f
	}
	running := func(n int, auto bool) *deployment {
		d := &deployment{fn: *fn(n, 1, 8), loops: make([]*streamLoop, n)}
		if auto {
			d.as = &autoscaler{}
		}
		return d
	}
	tests := []struct {
		name string
		fn   *manifests.Function
		old  *deployment
		want int
	}{
		{name: "fixed", fn: fn(3, 0, 0), old: running(5, true), want: 3},
		{name: "first deploy", fn: fn(2, 1, 8), want: 2},
		{name: "old one fixed", fn: fn(2, 1, 8), old: running(5, false), want: 2},
		{name: "old one scaled", fn: fn(2, 1, 8), old: running(6, true), want: 6},
		{name: "old one above the new max", fn: fn(2, 1, 4), old: running(6, true), want: 4},
		{name: "old one below the new min", fn: fn(3, 3, 4), old: running(1, true), want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := startCount(tt.fn, tt.old); got != tt.want {
				t.Errorf("startCount = %d, want %d", got, tt.want)
			}
		})
	}
}
