package gateway

import (
	"sync"
	"sync/atomic"
)

// workers run the gateway's local calls (callLocal) on goroutines kept
// between calls. A new goroutine's stack starts at 2 KiB and is copied to
// a larger one each time a call needs more, which was 3% of the CPU of
// orders-http; a worker's stack has grown to a handler's size already
// (the GC may shrink the stack of one idle for long). Up to max workers
// wait for the next call when theirs is done; beyond them a call gets a
// goroutine of its own.
type workers struct {
	jobs chan func()
	quit chan struct{}
	once sync.Once
	n    atomic.Int32
	max  int32
}

func newWorkers(n int) *workers {
	return &workers{jobs: make(chan func()), quit: make(chan struct{}), max: int32(n)}
}

// maxWorkers bounds the goroutines kept waiting: their stacks, a few KiB
// each, are the cost of a burst that has passed.
const maxWorkers = 256

// run runs f on a waiting worker, else on a new goroutine.
func (w *workers) run(f func()) {
	select {
	case w.jobs <- f:
		return
	default:
	}
	if w.n.Add(1) > w.max {
		w.n.Add(-1)
		go f()
		return
	}
	go w.work(f)
}

func (w *workers) work(f func()) {
	defer w.n.Add(-1)
	for {
		f()
		select {
		case f = <-w.jobs:
		case <-w.quit:
			return
		}
	}
}

// stop ends the waiting workers; one running a call ends after it.
func (w *workers) stop() { w.once.Do(func() { close(w.quit) }) }
