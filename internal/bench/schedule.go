package bench

import (
	"context"
	"math"
	"time"
)

// The open-loop scheduler. Operation i is due at start + i/rate, a pure
// function of i, so the plan never drifts and every operation has an
// intended send time that latency is measured from: when the platform (or
// the load generator) stalls, the operations that should have been sent
// meanwhile still count their wait, which closed-loop measurement and
// "sleep, then send, then time the call" loops silently drop (coordinated
// omission).
//
// Why not golang.org/x/time/rate's Limiter.Wait per operation: Wait tells
// when a token was granted, not when the operation was due, so latency
// would still start at the late send; and it arms a timer per operation,
// whose wake-up jitter at tens of thousands per second is as large as the
// interval itself. One dispatcher that sleeps until the next due time and
// then hands out everything already due (a burst only after an oversleep)
// costs one timer per sleep, not per operation.

// job is one scheduled operation: its index and intended send time.
type job struct {
	i  int64
	at time.Time
}

// schedule is an open-loop plan.
type schedule struct {
	start time.Time
	rate  float64   // operations per second, > 0
	end   time.Time // no operation is due at or after end (zero: no end)
	count int64     // at most count operations (0: no limit)
}

// at is when operation i is due.
func (s schedule) at(i int64) time.Time {
	return s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.rate))
}

// due returns operation i's time and whether it is part of the plan.
func (s schedule) due(i int64) (time.Time, bool) {
	t := s.at(i)
	if s.count > 0 && i >= s.count {
		return t, false
	}
	if !s.end.IsZero() && !t.Before(s.end) {
		return t, false
	}
	return t, true
}

// opsBefore is how many operations are due before d has passed from the
// start: the first index at or after d.
func (s schedule) opsBefore(d time.Duration) int64 {
	n := int64(math.Ceil(d.Seconds() * s.rate))
	for n > 0 && !s.at(n-1).Before(s.start.Add(d)) {
		n--
	}
	for s.at(n).Before(s.start.Add(d)) {
		n++
	}
	return n
}

// dispatch sends every planned job on ch as it comes due and closes ch
// when the plan ends or ctx is done. sleep is sleepCtx outside tests.
// When ch is full (every worker busy) it blocks; the jobs keep their
// intended times, so the wait shows up in their latency.
func dispatch(ctx context.Context, s schedule, ch chan<- job, now func() time.Time, sleep func(context.Context, time.Duration)) {
	defer close(ch)
	for i := int64(0); ; i++ {
		t, ok := s.due(i)
		if !ok {
			return
		}
		if d := t.Sub(now()); d > 0 {
			sleep(ctx, d)
		}
		select {
		case ch <- job{i: i, at: t}:
		case <-ctx.Done():
			return
		}
	}
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
