package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// streamLoop is one replica of a stream-triggered function: it pulls from
// the function's durable consumer (shared by every replica on every host,
// which makes it the queue group), hands batches to the BatchHandler and
// settles each message: ack after success, NakWithDelay with the manifest's
// backoff after a failure, and the DLQ stream after retry.maxDeliver.
type streamLoop struct {
	name       string
	stream     string
	js         jetstream.JetStream
	cons       jetstream.Consumer
	itMu       sync.Mutex // guards it and stopping: run replaces it, stop drains it
	it         jetstream.MessagesContext
	stopping   bool
	quit       chan struct{} // closed by stop: ends reopen's wait
	buffer     int           // pull buffer, in messages
	bufBytes   int           // and in bytes (0: no bound; see pullOpt)
	h          runtime.BatchHandler
	batchSize  int
	batchWait  time.Duration
	batchBytes int // spec.batch.maxBytes; 0: no bound
	timeout    time.Duration
	maxDeliver int
	backoff    []time.Duration
	calls      *callTracker
	log        *slog.Logger
	m          *fnMetrics
	done       chan struct{}
}

// consumerConfig is the durable consumer of a stream trigger. The server's
// MaxDeliver is one more than the manifest's: the extra delivery only
// happens when an instance died while handling the last attempt, and then
// the message goes straight to the DLQ, so every message is dead-lettered
// exactly once, crash or not.
func consumerConfig(durable, filter string, maxDeliver, concurrency, replicas int, timeout, wait time.Duration) jetstream.ConsumerConfig {
	ackWait := 2*timeout + wait
	if ackWait < 5*time.Second {
		ackWait = 5 * time.Second
	}
	// Room for the pull buffers of a few hosts; bounds memory and redelivery
	// storms when a host dies.
	maxAck := concurrency * replicas * 4
	if maxAck < 1000 {
		maxAck = 1000
	}
	return jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver + 1,
		MaxAckPending: maxAck,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

func startStreamLoop(ctx context.Context, cons jetstream.Consumer, stream string, h runtime.BatchHandler, d *deployment, idx int) (*streamLoop, error) {
	fn := &d.fn
	backoff := make([]time.Duration, len(fn.Spec.Retry.Backoff))
	for i, b := range fn.Spec.Retry.Backoff {
		backoff[i] = b.Std()
	}
	l := &streamLoop{
		name:       fn.Metadata.Name,
		stream:     stream,
		js:         d.js,
		cons:       cons,
		h:          h,
		batchSize:  fn.Spec.Batch.Size,
		batchWait:  fn.Spec.Batch.Wait.Std(),
		batchBytes: fn.Spec.Batch.MaxBytes,
		timeout:    fn.Spec.Timeout.Std(),
		maxDeliver: fn.Spec.Retry.MaxDeliver,
		backoff:    backoff,
		calls:      d.calls,
		log:        d.log.With("instance", idx),
		m:          d.metrics,
		done:       make(chan struct{}),
		quit:       make(chan struct{}),
	}
	if stream == wire.StreamCalls && d.handler != nil {
		l.m = d.metrics.forwarding() // the request instances count these calls
	}
	l.buffer = max(fn.Spec.Concurrency, 2*l.batchSize)
	if l.batchBytes > 0 {
		// Two batches of bytes, and never less than the largest message
		// the server takes: a byte limit below one message would stall
		// the pull (jetstream.PullMaxMessagesWithBytesLimit).
		l.bufBytes = max(2*l.batchBytes, int(d.js.Conn().MaxPayload()))
	}
	it, err := cons.Messages(l.pullOpt())
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", stream, err)
	}
	l.it = it
	go l.run()
	return l, nil
}

func (l *streamLoop) run() {
	defer close(l.done)
	raw := make([]jetstream.Msg, 0, l.batchSize)
	l.itMu.Lock()
	it := l.it
	l.itMu.Unlock()
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				if it = l.reopen(); it == nil {
					return
				}
				continue
			}
			l.log.Warn("pull failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		raw = append(raw[:0], m)
		size := len(m.Data())
		closed := false
		if l.batchSize > 1 {
			raw, closed = l.fill(it, raw, size)
		}
		l.handle(raw)
		if closed {
			if it = l.reopen(); it == nil {
				return
			}
		}
	}
}

// fill adds messages to the batch raw (of size bytes) until it is full or
// its batch.wait has passed, and reports whether the iterator ended. Until
// the deadline Next waits on one context, one timer for the batch where
// NextMaxWait would make one for each message (nats.go's heartbeat check
// still makes one per Next); after it, what is already buffered still
// joins the batch.
func (l *streamLoop) fill(it jetstream.MessagesContext, raw []jetstream.Msg, size int) ([]jetstream.Msg, bool) {
	deadline := time.Now().Add(l.batchWait)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	untilDeadline := jetstream.NextContext(ctx)
	for len(raw) < l.batchSize && (l.batchBytes == 0 || size < l.batchBytes) {
		opt := untilDeadline
		if !time.Now().Before(deadline) {
			opt = jetstream.NextMaxWait(time.Microsecond)
		}
		m, err := it.Next(opt)
		if err != nil {
			return raw, errors.Is(err, jetstream.ErrMsgIteratorClosed)
		}
		raw = append(raw, m)
		size += len(m.Data())
	}
	return raw, false
}

// delivery is one pulled message: the Msg its handler sees and the
// JetStream delivery to settle once the batch ran.
type delivery struct {
	runtime.Msg
	js jetstream.Msg
}

func (l *streamLoop) handle(raw []jetstream.Msg) {
	start := time.Now()
	all := make([]delivery, len(raw)) // one allocation for the batch's messages
	live := make([]*runtime.Msg, 0, len(raw))
	var pending uint64
	for i, rm := range raw {
		md, err := rm.Metadata()
		if err != nil {
			l.log.Error("message without metadata", "err", err)
			_ = rm.Term()
			continue
		}
		pending = md.NumPending
		d := &all[i]
		d.Msg = runtime.Msg{Subject: rm.Subject(), Data: rm.Data(), Header: rm.Headers(), Stream: md.Stream,
			Seq: md.Sequence.Stream, Delivered: int(md.NumDelivered), Time: md.Timestamp}
		d.js = rm
		if d.Header == nil {
			d.Header = nats.Header{}
		}
		if d.Delivered > 1 {
			l.m.redeliveries.Inc()
		}
		if d.Delivered > l.maxDeliver {
			// The previous attempt was the last one and its instance died
			// before settling it.
			d.Reject(errors.New("instance stopped during the last delivery attempt"))
			continue
		}
		live = append(live, &d.Msg)
	}
	l.m.pending.Set(float64(pending))
	l.m.batchSize.Observe(float64(len(live)))
	l.m.inFlight.Inc()
	l.calls.begin(live)
	var herr error
	if len(live) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		herr = runtime.BatchHandlerFunc(l.h.HandleBatch).HandleBatch(ctx, live)
		if herr == nil && ctx.Err() != nil {
			herr = fmt.Errorf("%w after %s", context.DeadlineExceeded, l.timeout)
		}
		cancel()
	}
	l.m.inFlight.Dec()
	l.m.handled(len(live), time.Since(start))
	if herr != nil {
		e := runtime.AsError(herr)
		l.log.Warn("batch failed", "size", len(live), "code", e.Code, "err", herr)
	}
	for i := range all {
		if all[i].js != nil { // nil: no metadata, terminated above
			l.settle(&all[i], herr)
		}
	}
}

// settle acks, retries or dead-letters one message after its batch ran.
func (l *streamLoop) settle(d *delivery, batchErr error) {
	rejected, failed, result := d.Outcome()
	switch {
	case rejected != nil:
		l.deadLetter(d, rejected)
	case failed != nil || batchErr != nil:
		err := failed
		if err == nil {
			err = batchErr
		}
		l.m.errorf(runtime.AsError(err).Code)
		if d.Delivered >= l.maxDeliver {
			l.deadLetter(d, err)
			return
		}
		l.calls.failed(&d.Msg, err)
		if nerr := d.js.NakWithDelay(l.delay(d.Delivered)); nerr != nil {
			l.log.Warn("nak failed", "seq", d.Seq, "err", nerr)
		}
	default:
		for _, part := range d.RejectedParts() {
			if !l.deadLetterPart(d, part) {
				_ = d.js.NakWithDelay(time.Second) // the parts sent are de-duplicated next time
				return
			}
		}
		l.calls.succeeded(&d.Msg, result)
		if err := d.js.Ack(); err != nil {
			l.log.Warn("ack failed", "seq", d.Seq, "err", err)
		}
	}
}

// delay is the backoff before delivery number delivered+1: the manifest's
// list (its last entry repeats), or exponential from 500ms with jitter.
func (l *streamLoop) delay(delivered int) time.Duration {
	if n := len(l.backoff); n > 0 {
		return l.backoff[min(delivered-1, n-1)]
	}
	d := 500 * time.Millisecond << min(delivered-1, 6)
	return d/2 + rand.N(d/2+1)
}

// deadLetter publishes the message to dlq.<function> with the original
// payload and headers plus the last error and delivery count, waits for the
// DLQ's ack, then terminates the original. The DLQ publish is de-duplicated
// on stream and sequence, so a retry after a crash cannot double it.
func (l *streamLoop) deadLetter(m *delivery, cause error) {
	reason, err := l.publishDead(m, m.Data, cause, -1)
	if err != nil {
		l.log.Error("dead-letter publish failed; will retry", "seq", m.Seq, "err", err)
		_ = m.js.NakWithDelay(time.Second)
		return
	}
	l.calls.dead(&m.Msg, cause)
	l.log.Warn("dead-lettered", "seq", m.Seq, "subject", m.Subject, "deliveries", m.Delivered, "reason", reason,
		"trace_id", wire.TraceID(m.Header.Get(wire.HeaderTraceparent)))
	if err := m.js.Term(); err != nil {
		l.log.Warn("term failed", "seq", m.Seq, "err", err)
	}
}

// deadLetterPart dead-letters one refused item of m (Msg.RejectPart); false
// when the DLQ did not take it, and m must be delivered again.
func (l *streamLoop) deadLetterPart(m *delivery, part runtime.RejectedPart) bool {
	reason, err := l.publishDead(m, part.Data, part.Err, part.Index)
	if err != nil {
		l.log.Error("dead-letter publish of an item failed; will retry the message", "seq", m.Seq, "index", part.Index, "err", err)
		return false
	}
	l.log.Warn("dead-lettered", "seq", m.Seq, "index", part.Index, "subject", m.Subject, "reason", reason,
		"trace_id", wire.TraceID(m.Header.Get(wire.HeaderTraceparent)))
	return true
}

// publishDead publishes data as a dead letter of m (item index of it, or
// the whole message when index < 0) and returns the reason it recorded.
// Its Nats-Msg-Id names the stream, sequence and item, so the DLQ takes
// each once however often m is delivered.
func (l *streamLoop) publishDead(m *delivery, data []byte, cause error, index int) (string, error) {
	h := make(nats.Header, len(m.Header)+7)
	for k, v := range m.Header {
		h[k] = v
	}
	reason := cause.Error()
	if e := (*runtime.Error)(nil); errors.As(cause, &e) {
		reason = e.Msg
		if e.Err != nil {
			reason += ": " + e.Err.Error()
		}
	}
	id := "dlq:" + m.Stream + ":" + strconv.FormatUint(m.Seq, 10)
	if index >= 0 {
		reason = "item " + strconv.Itoa(index) + ": " + reason
		h[wire.HeaderDLQIndex] = []string{strconv.Itoa(index)}
		id += ":" + strconv.Itoa(index)
	}
	h[wire.HeaderDLQError] = []string{reason}
	h[wire.HeaderDLQDeliveries] = []string{strconv.Itoa(m.Delivered)}
	h[wire.HeaderDLQStream] = []string{m.Stream}
	h[wire.HeaderDLQSeq] = []string{strconv.FormatUint(m.Seq, 10)}
	h[wire.HeaderDLQSubject] = []string{m.Subject}
	if cid := m.Header.Get(wire.HeaderMsgID); cid != "" {
		// Nats-Msg-Id must change (it de-duplicates the DLQ publish), so
		// the client's own id travels on in its own header.
		h[wire.HeaderDLQMsgID] = []string{cid}
	}
	h[wire.HeaderMsgID] = []string{id}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := runtime.PublishDurable(ctx, l.js, &nats.Msg{Subject: "dlq." + l.name, Header: h, Data: data})
	if err != nil {
		return reason, err
	}
	if !ack.Duplicate { // a redelivery of a message whose parts were sent before
		l.m.deadLetters.Inc()
	}
	return reason, nil
}

// reopen is run's answer to an iterator that ended: nil after stop (the
// loop ends), else a new one on the same consumer. nats.go ends an
// iterator on its own only on a terminal status from the server (the
// consumer deleted, a bad request); leader changes, missed heartbeats and
// reconnects it rides out itself. A loop that ended there would leave its
// replica silently idle, so it pulls again, once a second at most, until
// it works (a deleted consumer comes back with the next deploy).
func (l *streamLoop) reopen() jetstream.MessagesContext {
	for {
		l.itMu.Lock()
		if l.stopping {
			l.itMu.Unlock()
			return nil
		}
		l.itMu.Unlock()
		l.log.Warn("pull iterator ended by the server; pulling again in 1s", "stream", l.stream)
		select {
		case <-time.After(time.Second):
		case <-l.quit:
			return nil
		}
		l.itMu.Lock()
		if l.stopping {
			l.itMu.Unlock()
			return nil
		}
		it, err := l.cons.Messages(l.pullOpt())
		if err == nil {
			l.it = it
		}
		l.itMu.Unlock()
		if err == nil {
			return it
		}
		l.log.Warn("pull again failed", "stream", l.stream, "err", err)
	}
}

// pullOpt bounds the pull buffer: in messages, and in bytes when the
// batch is (spec.batch.maxBytes), so that a backlog of large messages (an
// array of orders each) is not held by the thousand.
func (l *streamLoop) pullOpt() jetstream.PullMessagesOpt {
	if l.bufBytes > 0 {
		return jetstream.PullMaxMessagesWithBytesLimit(l.buffer, l.bufBytes)
	}
	return jetstream.PullMaxMessages(l.buffer)
}

// stop drains: no more pulls, buffered messages are still handled and
// settled, then the loop ends (or ctx does).
func (l *streamLoop) stop(ctx context.Context) error {
	l.itMu.Lock()
	if !l.stopping {
		close(l.quit)
	}
	l.stopping = true
	it := l.it
	l.itMu.Unlock()
	it.Drain()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		it.Stop()
		return fmt.Errorf("drain %s: %w", l.name, ctx.Err())
	}
}

// handlerBatch runs a per-message Handler over a batch, at most
// concurrency at once. A 4xx other than 408/429 cannot succeed on retry, so
// it dead-letters at once; any other error is retried.
type handlerBatch struct {
	h           runtime.Handler
	concurrency int
}

func (hb handlerBatch) HandleBatch(ctx context.Context, batch []*runtime.Msg) error {
	runtime.ForEach(batch, hb.concurrency, func(_ int, m *runtime.Msg) {
		req := runtime.NewRequest(m.Subject, m.Data, m.Header)
		err := runtime.HandlerFunc(hb.h.Handle).Handle(runtime.WithTraceparent(ctx, m.Header.Get(wire.HeaderTraceparent)), req)
		if err != nil {
			e := runtime.AsError(err)
			if e.Status >= 400 && e.Status < 500 && e.Status != 408 && e.Status != 429 {
				m.Reject(e)
			} else {
				m.Fail(e)
			}
			return
		}
		_, data, _ := req.Response()
		m.SetResult(data)
	})
	return nil
}

// forwarder is the async dispatcher of a request-triggered function: each
// call queued on calls.<function> is sent as a NATS request to the
// function's subject, so async calls work for external functions too.
type forwarder struct {
	nc          *nats.Conn
	subject     string
	timeout     time.Duration
	concurrency int
}

func (f forwarder) HandleBatch(ctx context.Context, batch []*runtime.Msg) error {
	return handlerBatch{h: runtime.HandlerFunc(f.call), concurrency: f.concurrency}.HandleBatch(ctx, batch)
}

func (f forwarder) call(ctx context.Context, req *runtime.Request) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	resp, err := f.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: f.subject, Header: req.Header, Data: req.Data})
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &runtime.Error{Status: 503, Code: "no_instances", Msg: "no instance is serving " + f.subject, Err: err}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return &runtime.Error{Status: 504, Code: "timeout", Msg: "function timed out", Err: err}
	case err != nil:
		return runtime.Internal(err)
	}
	if e := runtime.ErrorFromHeaders(resp.Header); e != nil {
		return e
	}
	req.Respond(resp.Data)
	return nil
}
