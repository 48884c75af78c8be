package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// Pending limits of a request instance's subscription: 64k calls or 64 MiB.
const (
	pendingMsgs  = 64 << 10
	pendingBytes = 64 << 20
)

// requestInstance is one replica of a request-triggered function: a nats
// micro service whose endpoint subscribes to the trigger subject in the
// function's queue group. Calls run on their own goroutines, at most
// spec.concurrency at once.
type requestInstance struct {
	name    string
	nc      *nats.Conn
	h       runtime.Handler
	svc     micro.Service
	sem     chan struct{}
	timeout time.Duration
	log     *slog.Logger
	m       *fnMetrics

	mu       sync.Mutex
	inflight int
	stopping bool // stop began: no more local calls (callLocal)
	idle     *sync.Cond
	lastCall atomic.Int64

	errors  atomic.Int64
	served  atomic.Int64
	totalNs atomic.Int64
}

// callStats is what `nats micro stats` shows in an endpoint's data: micro's
// own counters only see the hand-off to a goroutine, so the real numbers
// are reported here.
type callStats struct {
	Served         int64  `json:"served"`
	Errors         int64  `json:"errors"`
	InFlight       int    `json:"in_flight"`
	Concurrency    int    `json:"concurrency"`
	AverageLatency string `json:"average_latency"`
}

func startRequestInstance(nc *nats.Conn, d *deployment, idx int) (*requestInstance, error) {
	fn := &d.fn
	ri := &requestInstance{
		name:    fn.Metadata.Name,
		nc:      nc,
		h:       d.handler,
		sem:     make(chan struct{}, fn.Spec.Concurrency),
		timeout: fn.Spec.Timeout.Std(),
		log:     d.log.With("instance", idx),
		m:       d.metrics,
	}
	ri.idle = sync.NewCond(&ri.mu)
	svc, err := micro.AddService(nc, micro.Config{
		Name:        fn.Metadata.Name,
		Version:     "1.0.0",
		Description: "surge function " + fn.Metadata.Name + " (handler " + fn.Spec.Handler + ")",
		QueueGroup:  fn.QueueName(),
		Metadata: map[string]string{
			"handler":  fn.Spec.Handler,
			"revision": d.revision,
			"host":     d.hostID,
		},
		StatsHandler: func(*micro.Endpoint) any { return ri.stats() },
	})
	if err != nil {
		return nil, fmt.Errorf("start micro service for %s: %w", fn.Metadata.Name, err)
	}
	// Let a burst queue up in the client rather than be dropped as a slow
	// consumer, within bounds: a call queued past half its deadline is
	// answered overloaded in microseconds (dispatch), so a queue this long
	// only builds when the gateways' limits are off; beyond it the server
	// drops calls (their callers time out) instead of this process
	// growing without bound.
	err = svc.AddEndpoint("call", micro.HandlerFunc(ri.dispatch),
		micro.WithEndpointSubject(fn.Spec.Trigger.Subject),
		micro.WithEndpointQueueGroup(fn.QueueName()),
		micro.WithEndpointPendingLimits(pendingMsgs, pendingBytes))
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("subscribe %s: %w", fn.Spec.Trigger.Subject, err)
	}
	ri.svc = svc
	return ri, nil
}

func (ri *requestInstance) stats() callStats {
	ri.mu.Lock()
	inflight := ri.inflight
	ri.mu.Unlock()
	served := ri.served.Load()
	avg := time.Duration(0)
	if served > 0 {
		avg = time.Duration(ri.totalNs.Load() / served)
	}
	return callStats{Served: served, Errors: ri.errors.Load(), InFlight: inflight,
		Concurrency: cap(ri.sem), AverageLatency: avg.String()}
}

// dispatch runs on the subscription's goroutine: it takes a concurrency slot
// and hands the call to a goroutine. A call may wait in the subscription's
// queue and then for a slot until half its time is gone (its
// Surge-Deadline, or the function's timeout from now when it has none);
// past that it is answered 503 overloaded with Retry-After at once, without
// running: its caller would likely time out before the reply, and the work
// would only delay the calls behind it.
//
// A call finding a free slot runs whatever its Surge-Deadline says: calls
// queue here only while every slot is taken, and the deadline is the
// gateway's clock, so a host clock ahead of it by half a timeout would
// otherwise refuse every call of an idle host. Such a call gets at least
// half its timeout to run.
func (ri *requestInstance) dispatch(mr micro.Request) {
	reply := mr.Reply()
	hdr := nats.Header(mr.Headers())
	now := time.Now()
	deadline := callDeadline(hdr, now, ri.timeout)
	wait := deadline.Sub(now) - ri.timeout/2
	var waited time.Duration
	select {
	case ri.sem <- struct{}{}:
		deadline = ri.runDeadline(deadline, now)
	default:
		if wait <= 0 {
			ri.overloaded(reply, "waited in the queue for more than half of its timeout")
			return
		}
		t := time.NewTimer(wait)
		select {
		case ri.sem <- struct{}{}:
			t.Stop()
			waited = time.Since(now)
		case <-t.C:
			ri.overloaded(reply, "is at its concurrency limit")
			return
		}
	}
	// A call from the queue group runs even while the instance stops: it
	// was queued before the unsubscribe, and stop waits for it.
	ri.admit(false)
	go ri.serve(reply, deadline, waited, runtime.NewRequest(mr.Subject(), mr.Data(), hdr))
}

// admit counts a call that holds a slot as in flight, for stop to wait
// for; a local call (Host.LocalCall) is refused, false, once stop began.
func (ri *requestInstance) admit(local bool) bool {
	ri.mu.Lock()
	if local && ri.stopping {
		ri.mu.Unlock()
		return false
	}
	ri.inflight++
	ri.mu.Unlock()
	ri.lastCall.Store(time.Now().UnixNano())
	return true
}

// callDeadline is when the caller stops waiting: its Surge-Deadline, or
// timeout from now without one. A deadline further away than timeout (a
// caller with a longer wait, or a clock behind the gateway's) is cut to
// timeout: the function never runs longer than its manifest says.
func callDeadline(h nats.Header, now time.Time, timeout time.Duration) time.Time {
	limit := now.Add(timeout)
	v := h.Get(wire.HeaderDeadline)
	if v == "" {
		return limit
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		// A malformed header from a NATS caller: the call keeps the
		// function's own timeout rather than being refused for it.
		return limit
	}
	if d := time.UnixMilli(ms); d.Before(limit) {
		return d
	}
	return limit
}

// overloaded answers a call it will not run with 503 overloaded.
func (ri *requestInstance) overloaded(reply, why string) {
	ri.m.errorf(wire.CodeOverloaded)
	ri.errors.Add(1)
	ri.respondError(reply, &runtime.Error{Status: http.StatusServiceUnavailable, Code: wire.CodeOverloaded,
		Msg: "function " + ri.name + " " + why + "; retry later"})
}

func (ri *requestInstance) serve(reply string, deadline time.Time, waited time.Duration, req *runtime.Request) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	msg := ri.run(ctx, req)
	cancel()
	if reply == "" {
		return
	}
	msg.Subject = reply
	if waited > 0 {
		msg.Header[wire.HeaderSlotWait] = []string{strconv.FormatInt(max(1, waited.Microseconds()), 10)}
	}
	if perr := ri.nc.PublishMsg(msg); perr != nil {
		ri.log.Warn("reply failed", "err", perr)
	}
}

// acquireLocal takes a free concurrency slot for a call from this
// process's gateway (Host.LocalCall); false when every slot is taken or
// the instance is stopping (stop waits for the calls it let in).
func (ri *requestInstance) acquireLocal() bool {
	select {
	case ri.sem <- struct{}{}:
	default:
		return false
	}
	if !ri.admit(true) {
		<-ri.sem
		return false
	}
	return true
}

// callLocal runs a call acquireLocal let in on the caller's goroutine,
// its handler bounded by ctx (the caller's deadline), never longer than
// the function's timeout, and returns the reply serve would have
// published. msg's header becomes the request's (LocalCall).
func (ri *requestInstance) callLocal(ctx context.Context, msg *nats.Msg) *nats.Msg {
	if limit := time.Now().Add(ri.timeout); !deadlineBy(ctx, limit) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, limit)
		defer cancel()
	}
	wireValues(msg.Header)
	return ri.run(ctx, runtime.NewRequest(msg.Subject, msg.Data, msg.Header))
}

// deadlineBy reports whether ctx has a deadline no later than t.
func deadlineBy(ctx context.Context, t time.Time) bool {
	d, ok := ctx.Deadline()
	return ok && !d.After(t)
}

// runDeadline is the deadline of a call that found a free slot at now: its
// own, or half the timeout from now when that is later (see dispatch).
func (ri *requestInstance) runDeadline(deadline, now time.Time) time.Time {
	if floor := now.Add(ri.timeout / 2); deadline.Before(floor) {
		return floor
	}
	return deadline
}

// headerValue is what nats.go does to a header value it sends.
var headerValue = strings.NewReplacer("\r", " ", "\n", " ")

// wireValues makes h's values what an instance decodes off the wire:
// each trimmed and its CR and LF turned into spaces, as nats.go writes
// them, so a handler sees the same header whichever way the call came. It
// writes to h's value slices, which must be h's own (gateway.buildMsg);
// values that need no change (nearly all) cost nothing.
func wireValues(h nats.Header) {
	for _, vs := range h {
		for i, v := range vs {
			vs[i] = headerValue.Replace(textproto.TrimString(v))
		}
	}
}

// run runs one call that holds a concurrency slot, its handler's context
// ctx (the caller's deadline, never later than the function's timeout),
// and returns its reply (without a subject); it releases the slot.
func (ri *requestInstance) run(ctx context.Context, req *runtime.Request) *nats.Msg {
	start := time.Now()
	ri.m.inFlight.Inc()
	defer func() {
		<-ri.sem
		ri.m.inFlight.Dec()
		ri.mu.Lock()
		ri.inflight--
		if ri.inflight == 0 {
			ri.idle.Broadcast()
		}
		ri.mu.Unlock()
	}()
	tp := req.Header.Get(wire.HeaderTraceparent)
	err := runtime.HandlerFunc(ri.h.Handle).Handle(runtime.WithTraceparent(ctx, tp), req)
	if err == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w after %s (timeout %s)", context.DeadlineExceeded, time.Since(start).Round(time.Millisecond), ri.timeout)
	}
	elapsed := time.Since(start)
	ri.m.handled(1, elapsed)
	ri.served.Add(1)
	ri.totalNs.Add(int64(elapsed))
	if err != nil {
		e := runtime.AsError(err)
		ri.errors.Add(1)
		ri.m.errorf(e.Code)
		if e.Status >= 500 {
			ri.log.Error("call failed", "status", e.Status, "code", e.Code, "trace_id", wire.TraceID(tp), "err", err)
		}
	}
	return replyMsg(req, err)
}

// replyMsg builds the NATS reply for a call's outcome: the error in the
// headers (wire.SetError), or the handler's response with its status in
// Surge-Status unless it is 200.
func replyMsg(req *runtime.Request, err error) *nats.Msg {
	status, data, hdr := req.Response()
	m := &nats.Msg{Header: hdr}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	if err != nil {
		e := runtime.AsError(err)
		wire.SetError(m.Header, e.Status, e.Code, e.Msg)
		return m
	}
	if status != 0 && status != http.StatusOK {
		m.Header[wire.HeaderStatus] = []string{strconv.Itoa(status)}
	}
	m.Data = data
	return m
}

func (ri *requestInstance) respondError(reply string, e *runtime.Error) {
	if reply == "" {
		return
	}
	m := &nats.Msg{Subject: reply, Header: nats.Header{}}
	wire.SetError(m.Header, e.Status, e.Code, e.Msg)
	_ = ri.nc.PublishMsg(m)
}

// stop drains: the micro service unsubscribes (the server stops sending and
// messages already queued are still handled), then stop waits for every
// call to be answered or ctx to end.
func (ri *requestInstance) stop(ctx context.Context) error {
	ri.mu.Lock()
	ri.stopping = true
	ri.mu.Unlock()
	if err := ri.svc.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		ri.log.Warn("stop micro service", "err", err)
	}
	// A flush round trip makes sure the server has seen the unsubscribe and
	// everything it sent before is in our queue.
	_ = ri.nc.FlushTimeout(time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ri.mu.Lock()
			for ri.inflight > 0 {
				ri.idle.Wait()
			}
			ri.mu.Unlock()
			// Calls still queued in the draining subscription arrive a
			// moment later; wait until none has come for a while.
			if time.Since(time.Unix(0, ri.lastCall.Load())) > 50*time.Millisecond {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain %s: %w", ri.name, ctx.Err())
	}
}

// LocalCall takes a concurrency slot for a call to function on one of this
// host's instances, when one serves msg.Subject with a slot free, and
// returns the call: run, it runs the handler, its context ctx (cut to the
// function's timeout when ctx has no deadline that soon), and returns the
// reply the instance would have published had the call come through the
// function's queue group, which is where a call goes when this returns
// false (no instance here, every slot taken, draining). The slot is held
// until run returns; run must be called. A call taken owns msg: its header
// becomes the request's, values changed in place as the wire would
// change them, so no value slice of it may be shared (the caller does not
// use msg again). The gateway of the same process asks first
// (gateway.Config.Local): the call then skips NATS, the request and its
// reply, four socket writes and as many wake-ups.
func (h *Host) LocalCall(function string, msg *nats.Msg) (run func(ctx context.Context) *nats.Msg, ok bool) {
	h.mu.Lock()
	d := h.deps[function]
	h.mu.Unlock()
	if d == nil || d.handler == nil || d.fn.Spec.Trigger.Subject != msg.Subject {
		return nil, false
	}
	// The slot is taken under instMu: the autoscaler may replace the
	// instances meanwhile, and one it removed is stopping.
	var ri *requestInstance
	d.instMu.Lock()
	n := len(d.reqs)
	first := int(d.next.Add(1) % uint64(max(n, 1)))
	for i := range n {
		if c := d.reqs[(first+i)%n]; c.acquireLocal() {
			ri = c
			break
		}
	}
	d.instMu.Unlock()
	if ri == nil {
		return nil, false
	}
	return func(ctx context.Context) *nats.Msg { return ri.callLocal(ctx, msg) }, true
}
