package bench

import (
	"context"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestScheduleDue(t *testing.T) {
	tests := []struct {
		name      string
		s         schedule
		wantN     int64         // planned operations
		wantLast  time.Duration // due time of the last one, from start
		wantSpace time.Duration // between two
	}{
		{"1000/s for 1s", schedule{start: t0, rate: 1000, end: t0.Add(time.Second)}, 1000, 999 * time.Millisecond, time.Millisecond},
		{"3/s for 1s", schedule{start: t0, rate: 3, end: t0.Add(time.Second)}, 3, 666666666, 333333333},
		{"count wins over end", schedule{start: t0, rate: 100, end: t0.Add(time.Hour), count: 5}, 5, 40 * time.Millisecond, 10 * time.Millisecond},
		{"count without end", schedule{start: t0, rate: 10, count: 3}, 3, 200 * time.Millisecond, 100 * time.Millisecond},
		{"fractional rate", schedule{start: t0, rate: 0.5, end: t0.Add(5 * time.Second)}, 3, 4 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n int64
			var prev, last time.Time
			for i := int64(0); ; i++ {
				at, ok := tt.s.due(i)
				if !ok {
					break
				}
				if i > 0 && at.Sub(prev) != tt.wantSpace && at.Sub(prev) != tt.wantSpace+1 {
					t.Fatalf("op %d is %s after op %d, want %s", i, at.Sub(prev), i-1, tt.wantSpace)
				}
				prev, last = at, at
				n++
			}
			if n != tt.wantN {
				t.Errorf("planned %d operations, want %d", n, tt.wantN)
			}
			if got := last.Sub(t0); got != tt.wantLast {
				t.Errorf("last due at +%s, want +%s", got, tt.wantLast)
			}
		})
	}
}

func TestScheduleNoDrift(t *testing.T) {
	// At a rate whose interval is not a whole number of nanoseconds, the
	// millionth operation is still due exactly where the plan says.
	s := schedule{start: t0, rate: 3}
	if got, want := s.at(3_000_000), t0.Add(1_000_000*time.Second); got != want {
		t.Errorf("op 3e6 due at %s, want %s", got, want)
	}
}

func TestOpsBefore(t *testing.T) {
	tests := []struct {
		rate float64
		d    time.Duration
		want int64
	}{
		{1000, time.Second, 1000},
		{1000, 0, 0},
		{3, time.Second, 3},
		{3, 999 * time.Millisecond, 3},
		{3, 333 * time.Millisecond, 1},
		{3, 334 * time.Millisecond, 2},
	}
	for _, tt := range tests {
		s := schedule{start: t0, rate: tt.rate}
		if got := s.opsBefore(tt.d); got != tt.want {
			t.Errorf("rate %g: opsBefore(%s) = %d, want %d", tt.rate, tt.d, got, tt.want)
		}
	}
}

// fakeClock is a clock that only moves when slept on.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps int
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.sleeps++
}

func TestDispatchKeepsIntendedTimes(t *testing.T) {
	clock := &fakeClock{now: t0}
	s := schedule{start: t0, rate: 100, end: t0.Add(time.Second)}
	ch := make(chan job) // unbuffered: every send waits for the consumer
	go dispatch(context.Background(), s, ch, clock.Now, clock.Sleep)
	var got []job
	for j := range ch {
		got = append(got, j)
		if j.i == 10 {
			// The consumer stalls for half a second: the next 50 jobs are
			// already due and come at once, each still with its own time.
			clock.Sleep(context.Background(), 500*time.Millisecond)
		}
	}
	if len(got) != 100 {
		t.Fatalf("dispatched %d jobs, want 100", len(got))
	}
	for i, j := range got {
		if want := t0.Add(time.Duration(i) * 10 * time.Millisecond); j.i != int64(i) || !j.at.Equal(want) {
			t.Fatalf("job %d = {%d %s}, want {%d %s}", i, j.i, j.at, i, want)
		}
	}
	// 10 sleeps before the stall, none while catching up (jobs 11..60 were
	// due), then one per job.
	if clock.sleeps > 100-50+1 {
		t.Errorf("dispatcher slept %d times; it should not sleep while behind", clock.sleeps)
	}
}

func TestDispatchStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan job)
	done := make(chan struct{})
	go func() {
		dispatch(ctx, schedule{start: time.Now(), rate: 1}, ch, time.Now, sleepCtx)
		close(done)
	}()
	<-ch // job 0 is due at once; job 1 in a second
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("dispatch did not stop on cancel")
	}
	if _, ok := <-ch; ok {
		t.Error("channel not closed")
	}
}
