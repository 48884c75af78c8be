package sales

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime"
)

// slowClock is the wall clock, slow to read: the cache reads it inside
// Get and Put, so concurrent first calls overlap between the two.
type slowClock struct{ runtime.SystemClock }

func (c slowClock) Now() time.Time {
	time.Sleep(100 * time.Microsecond)
	return c.SystemClock.Now()
}

// TestLimiterFirstCallsAtOnce: 64 first calls of one key at the same
// instant, a limit of 5 per hour: exactly 5 allowed. Before the window was
// created under a lock, concurrent first calls each put their own window
// and more than 5 got through.
func TestLimiterFirstCallsAtOnce(t *testing.T) {
	for round := range 10 {
		l := newLimiter[int64](5, time.Hour, slowClock{})
		var allowed atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if ok, _ := l.allow(7); ok {
					allowed.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := allowed.Load(); n != 5 {
			t.Fatalf("round %d: %d of 64 concurrent first calls allowed, want 5", round, n)
		}
	}
}
