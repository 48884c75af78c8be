package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// deployment is one revision of one function on one host: its function
// value, its replicas, and for request triggers the async dispatcher.
type deployment struct {
	fn       manifests.Function
	revision string
	hostID   string
	js       jetstream.JetStream
	log      *slog.Logger
	metrics  *fnMetrics
	calls    *callTracker

	value   any
	handler runtime.Handler
	batch   runtime.BatchHandler

	// instMu guards reqs and loops, which the autoscaler grows and shrinks
	// while Status reads them.
	instMu sync.Mutex
	reqs   []*requestInstance
	loops  []*streamLoop
	next   atomic.Uint64 // round robin of LocalCall over reqs

	// What one more instance needs (see scaleTo): the connection of request
	// instances, the durable consumer and batch handler of stream loops.
	nc    *nats.Conn
	cons  jetstream.Consumer
	bh    runtime.BatchHandler
	drain time.Duration
	as    *autoscaler // nil without spec.autoscale
}

func (d *deployment) instances() int {
	d.instMu.Lock()
	defer d.instMu.Unlock()
	if d.fn.IsStream() {
		return len(d.loops)
	}
	return len(d.reqs)
}

func (h *Host) start(ctx context.Context, fn manifests.Function, rev string) (*deployment, error) {
	name := fn.Metadata.Name
	d := &deployment{
		fn:       fn,
		revision: rev,
		hostID:   h.cfg.ID,
		js:       h.cfg.StreamJS,
		log:      h.cfg.Logger.With("function", name, "revision", rev),
		metrics:  h.metrics.forFunction(name),
		nc:       h.cfg.NC,
		drain:    h.cfg.DrainTimeout,
	}
	if kv, err := h.cfg.StreamJS.KeyValue(ctx, wire.BucketCalls); err == nil {
		d.calls = &callTracker{kv: kv, function: name, log: d.log}
	}
	ok := false
	defer func() {
		if !ok {
			_ = d.stop(context.Background())
		}
	}()
	if fn.Spec.Handler != manifests.HandlerExternal {
		v, err := runtime.NewFunction(fn.Spec.Handler, fn.Spec.Config)
		if err != nil {
			return nil, err
		}
		if err := servesTrigger(&fn, v); err != nil {
			return nil, err
		}
		d.value = v
		d.handler, _ = v.(runtime.Handler)
		d.batch, _ = v.(runtime.BatchHandler)
	}
	// The streams before Provision, which may look at them; for an external
	// function they are all surge provides.
	if err := EnsureStreams(ctx, d.js, &fn, h.replication()); err != nil {
		return nil, err
	}
	if d.value != nil {
		// A stream function's traffic, its buckets' included, goes on the
		// stream connection (see Config.StreamNC).
		nc, js := h.cfg.NC, h.cfg.JS
		if fn.IsStream() {
			nc, js = h.cfg.StreamNC, h.cfg.StreamJS
		}
		buckets, err := ensureBuckets(ctx, js, &fn, h.replication(), d.log)
		if err != nil {
			return nil, err
		}
		if p, isP := d.value.(runtime.Provisioner); isP {
			env := &runtime.Env{Function: fn, NC: nc, JS: js, Store: h.cfg.Store,
				Logger: d.log, Metrics: h.cfg.Registry, Clock: h.cfg.Clock, Buckets: buckets}
			if err := p.Provision(ctx, env); err != nil {
				return nil, fmt.Errorf("provision %s: %w", name, err)
			}
		}
	}
	var err error
	if fn.IsStream() {
		err = d.startStream(ctx, h)
	} else {
		err = d.startRequest(ctx, h)
	}
	if err != nil {
		return nil, err
	}
	if fn.Spec.Autoscale != nil && d.value != nil {
		d.as = startAutoscaler(d, h.cfg.Clock, h.changed)
	}
	ok = true
	return d, nil
}

func (d *deployment) startRequest(ctx context.Context, h *Host) error {
	fn := &d.fn
	if d.handler != nil { // nil: an external function, served by the user's process
		for i := range fn.Spec.Replicas {
			ri, err := startRequestInstance(h.cfg.NC, d, i)
			if err != nil {
				return err
			}
			d.reqs = append(d.reqs, ri)
		}
		// A flush round trip: the server has the subscriptions before
		// the host reports the deployment as running.
		if err := h.cfg.NC.FlushTimeout(5 * time.Second); err != nil {
			return fmt.Errorf("flush subscriptions: %w", err)
		}
	}
	// The async dispatcher: calls.<name> queued by POST /async-function/{name}
	// or an async route, sent on to the subject as requests.
	cfg := consumerConfig("call-"+fn.Metadata.Name, "calls."+fn.Metadata.Name, fn.Spec.Retry.MaxDeliver,
		fn.Spec.Concurrency, 1, fn.Spec.Timeout.Std(), fn.Spec.Batch.Wait.Std())
	cons, err := d.js.CreateOrUpdateConsumer(ctx, wire.StreamCalls, cfg)
	if err != nil {
		return fmt.Errorf("async consumer for %s: %w", fn.Metadata.Name, err)
	}
	fw := forwarder{nc: h.cfg.NC, subject: fn.Spec.Trigger.Subject, timeout: fn.Spec.Timeout.Std(), concurrency: fn.Spec.Concurrency}
	l, err := startStreamLoop(ctx, cons, wire.StreamCalls, fw, d, 0)
	if err != nil {
		return err
	}
	d.loops = append(d.loops, l)
	return nil
}

func (d *deployment) startStream(ctx context.Context, h *Host) error {
	fn := &d.fn
	if fn.Spec.Handler == manifests.HandlerExternal {
		// An external stream consumer is the user's process; surge only
		// made sure of the stream.
		return nil
	}
	bh := d.batch
	if bh == nil { // NewFunction made sure of a Handler then
		bh = handlerBatch{h: d.handler, concurrency: fn.Spec.Concurrency}
	}
	cfg := consumerConfig(fn.QueueName(), fn.Spec.Trigger.Filter, fn.Spec.Retry.MaxDeliver,
		fn.Spec.Concurrency, maxInstances(fn), fn.Spec.Timeout.Std(), fn.Spec.Batch.Wait.Std())
	cons, err := d.js.CreateOrUpdateConsumer(ctx, fn.Spec.Trigger.Stream, cfg)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", cfg.Durable, fn.Spec.Trigger.Stream, err)
	}
	d.cons, d.bh = cons, bh
	for i := range fn.Spec.Replicas {
		l, err := startStreamLoop(ctx, cons, fn.Spec.Trigger.Stream, bh, d, i)
		if err != nil {
			return err
		}
		d.loops = append(d.loops, l)
	}
	return nil
}

func streamSubject(fn *manifests.Function) string {
	if fn.Spec.Trigger.Filter != "" {
		return fn.Spec.Trigger.Filter
	}
	return defaultStreamSubject(fn.Spec.Trigger.Stream)
}

// stop drains every replica at once, then lets the function clean up. The
// autoscaler stops first, so the instances stay as they are meanwhile.
func (d *deployment) stop(ctx context.Context) error {
	if d.as != nil {
		d.as.stop()
	}
	d.instMu.Lock()
	reqs, loops := d.reqs, d.loops
	d.instMu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, len(reqs)+len(loops))
	for _, ri := range reqs {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- ri.stop(ctx) }()
	}
	for _, l := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- l.stop(ctx) }()
	}
	wg.Wait()
	close(errs)
	var all []error
	for e := range errs {
		all = append(all, e)
	}
	if c, ok := d.value.(runtime.CleanerUpper); ok {
		if err := c.Cleanup(); err != nil {
			all = append(all, fmt.Errorf("cleanup %s: %w", d.fn.Metadata.Name, err))
		}
	}
	return errors.Join(all...)
}
