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

// TestWorkersReuse: a worker that finished its call takes the next one
// (no second goroutine), and after stop a call still runs, on a goroutine
// of its own.
func TestWorkersReuse(t *testing.T) {
	w := newWorkers(2)
	done := make(chan struct{})
	w.run(func() { done <- struct{}{} })
	<-done
	time.Sleep(50 * time.Millisecond) // the worker waits for the next call
	w.run(func() { done <- struct{}{} })
	<-done
	if n := w.n.Load(); n != 1 {
		t.Errorf("workers after two calls one after the other = %d, want 1 (the second on the first's worker)", n)
	}
	w.stop()
	deadline := time.Now().Add(5 * time.Second)
	for w.n.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still waiting after stop", w.n.Load())
		}
		time.Sleep(time.Millisecond)
	}
	w.run(func() { done <- struct{}{} })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a call after stop did not run")
	}
}
