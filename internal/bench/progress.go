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
	max := r.o.Count
	byTime := max == 0
	if byTime {
		max = (r.o.Warmup + r.o.Duration).Milliseconds()
	}
	bar := progressbar.NewOptions64(max,
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
			ok, errs := r.okN.Load(), r.errN.Load()
			now := time.Now()
			phase := "warm-up"
			rate := ""
			if now.After(r.measureFrom) {
				phase = "measuring"
				rate = fmt.Sprintf(", %s/s", FormatRate(float64(ok)/now.Sub(r.measureFrom).Seconds()))
			}
			bar.Describe(fmt.Sprintf("%s %s: %d ok, %d errors%s", r.o.Label, phase, ok, errs, rate))
			if byTime {
				_ = bar.Set64(min(now.Sub(r.start).Milliseconds(), max))
			} else {
				_ = bar.Set64(min(ok+errs, max))
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
