package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// KindNotSent counts open-loop operations still queued when the run had to
// stop (the platform fell so far behind the rate that the run overran its
// duration by the grace period). They count as errors, so an overloaded
// open-loop run cannot look healthy by leaving its slowest requests out.
const KindNotSent = "not_sent"

// Options bound and shape a run.
type Options struct {
	// Label names the result (default: the scenario name).
	Label string
	// Target is the URL the scenario talks to, for the report.
	Target string
	// Duration of the measured phase; ignored when Count > 0.
	Duration time.Duration
	// Count of measured operations; 0 means run for Duration.
	Count int64
	// Warmup runs the load this long before measuring.
	Warmup time.Duration
	// Concurrency is the number of workers (>= 1).
	Concurrency int
	// Rate > 0 runs open-loop at this many operations per second;
	// 0 runs closed-loop, every worker as fast as it can.
	Rate float64
	// Grace is how long an open-loop run may overrun its plan before the
	// queued operations are given up as not sent (default: max(10s, Duration)).
	Grace time.Duration
	// NoVerify skips the scenario's verification.
	NoVerify bool
	// Progress, when not nil, receives a progress bar.
	Progress io.Writer
	// Params are recorded in the result (payload size and the like).
	Params map[string]string
	// CPUPID, when > 0, is a process on this machine (the surge up
	// serving the run) whose CPU time the result records: from the start
	// of the load, warm-up included, until the run's work has settled
	// (Result.TargetCPU).
	CPUPID int
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	switch {
	case o.Concurrency < 1:
		return fmt.Errorf("--concurrency must be at least 1, got %d", o.Concurrency)
	case o.Count < 0:
		return fmt.Errorf("--count must not be negative, got %d", o.Count)
	case o.Count == 0 && o.Duration <= 0:
		return fmt.Errorf("--duration must be positive (or set --count), got %s", o.Duration)
	case o.Warmup < 0:
		return fmt.Errorf("--warmup must not be negative, got %s", o.Warmup)
	case o.Rate < 0:
		return fmt.Errorf("--rate must not be negative, got %g", o.Rate)
	case o.CPUPID < 0:
		return fmt.Errorf("--cpu-pid must not be negative, got %d", o.CPUPID)
	}
	return nil
}

// worker is one load goroutine's private tally, merged after the run.
type worker struct {
	hist  *hdrhistogram.Histogram
	ehist *hdrhistogram.Histogram // latency of failed operations (refusals)
	kinds map[string]int64
	ok    int64
	errs  int64
	last  time.Time // completion of the last measured operation
	// seen counts for the progress bar: measured ok, measured errors and
	// warm-up operations. One writer each (this worker), so the atomic
	// adds do not contend.
	seenOK, seenErrs, seenWarm atomic.Int64
}

func (w *worker) record(kind string, latency time.Duration, done time.Time) {
	if kind == "" {
		w.ok++
		recordUS(w.hist, latency)
	} else {
		w.errs++
		w.kinds[kind]++
		recordUS(w.ehist, latency)
	}
	if done.After(w.last) {
		w.last = done
	}
}

// run is the state of one Run shared by its goroutines.
type run struct {
	sc          Scenario
	o           Options
	start       time.Time
	measureFrom time.Time
	end         time.Time // zero in count mode
	workers     []*worker
	claimed     atomic.Int64 // closed-loop count mode
}

// Run drives sc with o and returns the result, verified when sc is a
// Verifier (unless o.NoVerify). An error means the run could not happen at
// all (or was interrupted); failed operations and a failed or incomplete
// verification are in the Result.
func Run(ctx context.Context, sc Scenario, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Label == "" {
		o.Label = sc.Name()
	}
	if err := sc.Setup(ctx, o.Concurrency); err != nil {
		_ = sc.Close() // whatever Setup got before it failed
		return nil, fmt.Errorf("%s: setup: %w", sc.Name(), err)
	}
	defer sc.Close()

	r := &run{sc: sc, o: o, workers: make([]*worker, o.Concurrency)}
	for i := range r.workers {
		r.workers[i] = &worker{hist: newHistogram(), ehist: newHistogram(), kinds: map[string]int64{}}
	}
	var cpu0 time.Duration // the target's CPU time when the load starts
	if o.CPUPID > 0 {
		var err error
		if cpu0, err = ProcessCPU(o.CPUPID); err != nil {
			return nil, fmt.Errorf("%s: --cpu-pid: %w", sc.Name(), err)
		}
	}
	r.start = time.Now()
	r.measureFrom = r.start.Add(o.Warmup)
	if o.Count == 0 {
		r.end = r.measureFrom.Add(o.Duration)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopProgress := r.progress(runCtx)
	if o.Rate > 0 {
		r.openLoop(runCtx)
	} else {
		r.closedLoop(runCtx)
	}
	stopProgress()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: interrupted: %w", sc.Name(), err)
	}
	res := r.result()
	if o.CPUPID > 0 {
		res.TargetPID, res.cpu0 = o.CPUPID, cpu0
		res.settled() // the load is over; a drained backlog moves it later
	}
	if v, ok := sc.(Verifier); ok && !o.NoVerify {
		ver, err := v.Verify(ctx, res)
		if err != nil {
			// Not verifiable (the backlog did not drain, the store did not
			// answer) is a failed verification, reported with the result.
			ver = &Verification{Problems: []string{"verification did not complete: " + err.Error()}}
		}
		res.Verify = ver
	}
	res.End = time.Now()
	return res, nil
}

func (r *run) closedLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for id, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !r.end.IsZero() && !t0.Before(r.end) {
					return
				}
				measuring := !t0.Before(r.measureFrom)
				if measuring && r.o.Count > 0 && r.claimed.Add(1) > r.o.Count {
					return
				}
				kind := r.sc.Do(ctx, id)
				if measuring {
					done := time.Now()
					w.record(kind, done.Sub(t0), done)
					w.count(kind)
				} else {
					w.seenWarm.Add(1)
				}
			}
		}()
	}
	wg.Wait()
}

func (r *run) openLoop(ctx context.Context) {
	s := schedule{start: r.start, rate: r.o.Rate, end: r.end}
	warmN := s.opsBefore(r.o.Warmup)
	planned := r.o.Count // measured operations in the plan
	if planned > 0 {
		s.count = warmN + planned
	} else {
		planned = s.opsBefore(r.o.Warmup+r.o.Duration) - warmN
	}
	grace := r.o.Grace
	if grace <= 0 {
		grace = max(10*time.Second, r.o.Duration)
	}
	ctx, cancel := context.WithDeadline(ctx, s.at(warmN+planned).Add(grace))
	defer cancel()
	ch := make(chan job, 4*len(r.workers))
	go dispatch(ctx, s, ch, time.Now, sleepCtx)
	var wg sync.WaitGroup
	for id, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if ctx.Err() != nil {
					continue // given up; counted below
				}
				kind := r.sc.Do(ctx, id)
				if j.i >= warmN {
					done := time.Now()
					w.record(kind, done.Sub(j.at), done)
					w.count(kind)
				} else {
					w.seenWarm.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return
	}
	done := int64(0)
	for _, w := range r.workers {
		done += w.ok + w.errs
	}
	if missing := planned - done; missing > 0 {
		w := r.workers[0]
		w.errs += missing
		w.kinds[KindNotSent] += missing
	}
}

func (w *worker) count(kind string) {
	if kind == "" {
		w.seenOK.Add(1)
	} else {
		w.seenErrs.Add(1)
	}
}

// seen sums the workers' progress counts.
func (r *run) seen() (ok, errs, warm int64) {
	for _, w := range r.workers {
		ok += w.seenOK.Load()
		errs += w.seenErrs.Load()
		warm += w.seenWarm.Load()
	}
	return ok, errs, warm
}

// result merges the workers' tallies.
func (r *run) result() *Result {
	h, eh := newHistogram(), newHistogram()
	res := &Result{
		Label: r.o.Label, Scenario: r.sc.Name(), Target: r.o.Target, Mode: "closed",
		Concurrency: r.o.Concurrency, Params: r.o.Params, Start: r.start,
		Warmup: r.o.Warmup.Seconds(), ErrorKinds: map[string]int64{},
	}
	if r.o.Rate > 0 {
		res.Mode, res.Rate = "open", r.o.Rate
	}
	var last time.Time
	for _, w := range r.workers {
		h.Merge(w.hist)
		eh.Merge(w.ehist)
		res.Ops += w.ok
		res.Errors += w.errs
		for k, n := range w.kinds {
			res.ErrorKinds[k] += n
		}
		if w.last.After(last) {
			last = w.last
		}
	}
	if len(res.ErrorKinds) == 0 {
		res.ErrorKinds = nil
	}
	if last.After(r.measureFrom) {
		res.Seconds = last.Sub(r.measureFrom).Seconds()
		res.Throughput = float64(res.Ops) / res.Seconds
	}
	res.Latency = latencyOf(h)
	if res.Errors > 0 {
		el := latencyOf(eh)
		res.ErrorLatency = &el
	}
	if c, ok := r.sc.(Counter); ok {
		unit, per := c.Unit()
		res.Unit, res.UnitRate = unit, res.Throughput*float64(per)
	}
	return res
}
