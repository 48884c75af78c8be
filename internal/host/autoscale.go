package host

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// Autoscaling (spec.autoscale): every host samples its function's signal
// once a second and moves its own instances between min and max. The
// decision is scaler's, a pure function of the samples and the clock; the
// autoscaler around it takes the samples and adds or drains instances.

// autoscaleInterval is how often the autoscaler samples its signal.
const autoscaleInterval = time.Second

// upSamples is how many samples in a row must want more instances before
// the scaler adds any: one burst between two samples is not a trend.
const upSamples = 2

// scaler decides the instance count from samples of a signal. It wants
// ceil(signal/target) instances inside min..max. It grows once upSamples
// samples in a row wanted more, to the least of what they wanted; it
// shrinks only when no sample for a whole cool-down wanted as many as run,
// to the most any of those samples wanted. A signal hovering at a
// threshold therefore never flaps: a sample above it resets the
// cool-down, a sample below it breaks the streak up.
type scaler struct {
	min, max int
	target   int64
	cooldown time.Duration

	current  int
	streak   int       // samples in a row that wanted more than current
	upTo     int       // the least of what the streak wanted
	lastNeed time.Time // the last sample that wanted current or more, or the last change
	downTo   int       // the most any sample wanted since lastNeed
}

// newScaler returns a scaler at start instances (kept inside min..max)
// whose cool-down begins at now.
func newScaler(a *manifests.Autoscale, target int, start int, now time.Time) *scaler {
	return &scaler{min: a.Min, max: a.Max, target: int64(max(target, 1)), cooldown: a.Cooldown.Std(),
		current: min(max(start, a.Min), a.Max), lastNeed: now}
}

// want is the instance count signal calls for.
func (s *scaler) want(signal int64) int {
	n := (max(signal, 0) + s.target - 1) / s.target
	return int(min(max(n, int64(s.min)), int64(s.max)))
}

// observe takes one sample at now and returns the instance count.
func (s *scaler) observe(now time.Time, signal int64) int {
	w := s.want(signal)
	switch {
	case w > s.current:
		if s.streak == 0 || w < s.upTo {
			s.upTo = w
		}
		s.streak++
		s.lastNeed, s.downTo = now, 0
		if s.streak >= upSamples {
			s.set(s.upTo, now)
		}
	case w == s.current:
		s.streak = 0
		s.lastNeed, s.downTo = now, 0
	default:
		s.streak = 0
		s.downTo = max(s.downTo, w)
		if now.Sub(s.lastNeed) >= s.cooldown {
			s.set(s.downTo, now)
		}
	}
	return s.current
}

func (s *scaler) set(n int, now time.Time) {
	s.current, s.streak, s.lastNeed, s.downTo = n, 0, now, 0
}

// autoscaler runs one deployment's scaler: it samples, and when the count
// changes it starts instances or drains them, one at a time, never
// touching the others.
type autoscaler struct {
	d       *deployment
	clock   runtime.Clock
	changed func() // the host's: publish the heartbeat now
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu     sync.Mutex // guards s and signal
	s      *scaler
	signal int64
}

// startAutoscaler starts scaling d; d.stop stops it.
func startAutoscaler(d *deployment, clock runtime.Clock, changed func()) *autoscaler {
	a := d.fn.Spec.Autoscale
	target := a.TargetInFlight
	if d.fn.IsStream() {
		target = a.TargetBacklog
	}
	as := &autoscaler{d: d, clock: clock, changed: changed, quit: make(chan struct{}), done: make(chan struct{}),
		s: newScaler(a, target, d.instances(), clock.Now())}
	d.metrics.desired.Set(float64(as.s.current))
	go as.run()
	return as
}

func (as *autoscaler) run() {
	defer close(as.done)
	t := time.NewTicker(autoscaleInterval)
	defer t.Stop()
	for {
		select {
		case <-as.quit:
			return
		case <-t.C:
		}
		sig, err := as.sample()
		if err != nil {
			// No sample, no decision: a consumer that cannot be read says
			// nothing about the load.
			as.d.log.Debug("autoscale sample failed", "err", err)
			continue
		}
		as.mu.Lock()
		as.signal = sig
		want := as.s.observe(as.clock.Now(), sig)
		as.mu.Unlock()
		as.d.metrics.desired.Set(float64(want))
		if from := as.d.instances(); want != from {
			as.scale(from, want, sig)
		}
	}
}

// sample reads the signal: a stream trigger's backlog (messages not yet
// delivered plus delivered and not yet acked, over every host), or the
// calls in flight on this host's instances of a request trigger.
func (as *autoscaler) sample() (int64, error) {
	d := as.d
	if !d.fn.IsStream() {
		d.instMu.Lock()
		defer d.instMu.Unlock()
		var n int64
		for _, ri := range d.reqs {
			ri.mu.Lock()
			n += int64(ri.inflight)
			ri.mu.Unlock()
		}
		return n, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), autoscaleInterval)
	defer cancel()
	ci, err := d.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer info: %w", err)
	}
	return int64(ci.NumPending) + int64(ci.NumAckPending), nil
}

// scale moves the instances from from to to and logs it.
func (as *autoscaler) scale(from, to int, signal int64) {
	dir := "up"
	if to < from {
		dir = "down"
	}
	as.d.log.Info("autoscaled", "from", from, "to", to, "signal", signal, "direction", dir)
	as.d.metrics.m.scaleEvents.WithLabelValues(as.d.fn.Metadata.Name, dir).Inc()
	err := as.d.scaleTo(to, as.quit)
	select {
	case <-as.quit:
		return // replaced or removed: the host's gauges and heartbeat are the new version's
	default:
	}
	n := as.d.instances()
	as.d.metrics.m.instances.WithLabelValues(as.d.fn.Metadata.Name).Set(float64(n))
	if err != nil {
		// The scaler starts again from what runs, so desired says the
		// truth and a retry waits for the signal to ask again.
		as.d.log.Warn("autoscale incomplete", "want", to, "instances", n, "err", err)
		as.mu.Lock()
		as.s.set(n, as.clock.Now())
		as.mu.Unlock()
		as.d.metrics.desired.Set(float64(n))
	}
	as.changed()
}

// status is the autoscaler's part of the heartbeat.
func (as *autoscaler) status() *wire.AutoscaleStatus {
	as.mu.Lock()
	defer as.mu.Unlock()
	return &wire.AutoscaleStatus{Desired: as.s.current, Min: as.s.min, Max: as.s.max, Signal: as.signal}
}

// stop ends sampling and waits for a scale in progress to finish.
func (as *autoscaler) stop() {
	as.once.Do(func() { close(as.quit) })
	<-as.done
}

// scaleTo starts or drains instances, one at a time, until n run; it
// stops when quit closes (the deployment is being replaced or removed and
// drains every instance itself). An instance is removed by draining it: it
// pulls or receives nothing more and settles or answers everything it
// has, so no message is lost.
func (d *deployment) scaleTo(n int, quit <-chan struct{}) error {
	for {
		select {
		case <-quit:
			return nil
		default:
		}
		d.instMu.Lock()
		have := len(d.reqs)
		if d.fn.IsStream() {
			have = len(d.loops)
		}
		d.instMu.Unlock()
		switch {
		case have == n:
			return nil
		case have < n:
			if err := d.addInstance(have); err != nil {
				return err
			}
		default:
			if err := d.removeInstance(); err != nil {
				return err
			}
		}
	}
}

// addInstance starts instance number idx.
func (d *deployment) addInstance(idx int) error {
	if d.fn.IsStream() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, err := startStreamLoop(ctx, d.cons, d.fn.Spec.Trigger.Stream, d.bh, d, idx)
		if err != nil {
			return err
		}
		d.instMu.Lock()
		d.loops = append(d.loops, l)
		d.instMu.Unlock()
		return nil
	}
	ri, err := startRequestInstance(d.nc, d, idx)
	if err != nil {
		return err
	}
	d.instMu.Lock()
	d.reqs = append(d.reqs, ri)
	d.instMu.Unlock()
	// As at start: the server has the subscription before it counts.
	return d.nc.FlushTimeout(5 * time.Second)
}

// removeInstance takes the newest instance out and drains it.
func (d *deployment) removeInstance() error {
	ctx, cancel := context.WithTimeout(context.Background(), d.drain)
	defer cancel()
	d.instMu.Lock()
	if d.fn.IsStream() {
		l := d.loops[len(d.loops)-1]
		d.loops = d.loops[:len(d.loops)-1]
		d.instMu.Unlock()
		return l.stop(ctx)
	}
	ri := d.reqs[len(d.reqs)-1]
	d.reqs = d.reqs[:len(d.reqs)-1]
	d.instMu.Unlock()
	return ri.stop(ctx)
}

// maxInstances is the most instances fn runs on one host.
func maxInstances(fn *manifests.Function) int {
	if a := fn.Spec.Autoscale; a != nil {
		return a.Max
	}
	return fn.Spec.Replicas
}

// startCount is the instances a new revision of fn starts with: its
// spec.replicas, or, replacing an autoscaled revision, the count the old
// one had reached (inside the new bounds), so a redeploy under load does
// not drop to the minimum.
func startCount(fn *manifests.Function, old *deployment) int {
	a := fn.Spec.Autoscale
	if a == nil || old == nil || old.as == nil {
		return fn.Spec.Replicas
	}
	return min(max(old.instances(), a.Min), a.Max)
}
