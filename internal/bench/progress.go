package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress draws a bar on o.Progress until the returned stop is called:
// elapsed time against warm-up plus duration, or measured operations
// against the count. It is off (a no-op) when o.Progress is nil.
func (r *run) progress(ctx context.Context) (stop func()) {
	if r.o.Progress == nil {
		return func() {}
	}
	total := r.o.Count
	byTime := total == 0
	if byTime {
		total = (r.o.Warmup + r.o.Duration).Milliseconds()
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(r.o.Progress),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetDescription(r.o.Label),
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-done:
				_ = bar.Finish()
				return
			case <-ctx.Done():
				return
			}
			ok, errs, warm := r.seen()
			now := time.Now()
			if now.Before(r.measureFrom) {
				bar.Describe(fmt.Sprintf("%s warm-up: %d ops", r.o.Label, warm))
			} else {
				bar.Describe(fmt.Sprintf("%s: %d ok, %d errors, %s/s", r.o.Label, ok, errs,
					FormatRate(float64(ok)/now.Sub(r.measureFrom).Seconds())))
			}
			if byTime {
				_ = bar.Set64(min(now.Sub(r.start).Milliseconds(), total))
			} else {
				_ = bar.Set64(min(ok+errs, total))
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
