package gateway

import (
	"sync"
	"testing"
	"time"
)

// TestWorkers: every call runs, at most max workers are kept, a call
// beyond them still runs, and stop ends the waiting workers.
func TestWorkers(t *testing.T) {
	w := newWorkers(2)
	var wg sync.WaitGroup
	release := make(chan struct{})
	ran := make(chan int, 3)
	for i := range 3 {
		wg.Add(1)
		w.run(func() {
			defer wg.Done()
			<-release
			ran <- i
		})
	}
	if n := w.n.Load(); n != 2 {
		t.Errorf("workers with three calls held = %d, want 2 (the third on a goroutine of its own)", n)
	}
	close(release)
	wg.Wait()
	if len(ran) != 3 {
		t.Fatalf("%d of 3 calls ran", len(ran))
	}
	deadline := time.Now().Add(5 * time.Second)
	w.stop()
	w.stop() // twice is harmless (Shutdown may run twice)
	for w.n.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still waiting after stop", w.n.Load())
		}
		time.Sleep(time.Millisecond)
	}
}
