package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	it         jetstream.MessagesContext
	h          BatchHandler
	batchSize  int
	batchWait  time.Duration
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

func startStreamLoop(ctx context.Context, cons jetstream.Consumer, stream string, h BatchHandler, d *deployment, idx int) (*streamLoop, error) {
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
		timeout:    fn.Spec.Timeout.Std(),
		maxDeliver: fn.Spec.Retry.MaxDeliver,
		backoff:    backoff,
		calls:      d.calls,
		log:        d.log.With("instance", idx),
		m:          d.metrics,
		done:       make(chan struct{}),
	}
	buffer := max(fn.Spec.Concurrency, 2*l.batchSize)
	it, err := cons.Messages(jetstream.PullMaxMessages(buffer))
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
	for {
		m, err := l.it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			l.log.Warn("pull failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		raw = append(raw[:0], m)
		closed := false
		deadline := time.Now().Add(l.batchWait)
		for len(raw) < l.batchSize {
			wait := time.Until(deadline)
			if wait <= 0 {
				wait = time.Microsecond
			}
			m, err := l.it.Next(jetstream.NextMaxWait(wait))
			if err != nil {
				closed = errors.Is(err, jetstream.ErrMsgIteratorClosed)
				break
			}
			raw = append(raw, m)
		}
		l.handle(raw)
		if closed {
			return
		}
	}
}

func (l *streamLoop) handle(raw []jetstream.Msg) {
	start := time.Now()
	all := make([]Msg, len(raw)) // one allocation for the batch's messages
	msgs := make([]*Msg, 0, len(raw))
	live := make([]*Msg, 0, len(raw))
	var pending uint64
	for i, rm := range raw {
		md, err := rm.Metadata()
		if err != nil {
			l.log.Error("message without metadata", "err", err)
			_ = rm.Term()
			continue
		}
		pending = md.NumPending
		m := &all[i]
		*m = Msg{Subject: rm.Subject(), Data: rm.Data(), Header: rm.Headers(), Stream: md.Stream,
			Seq: md.Sequence.Stream, Delivered: int(md.NumDelivered), Time: md.Timestamp, js: rm}
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		msgs = append(msgs, m)
		if m.Delivered > 1 {
			l.m.redeliveries.Inc()
		}
		if m.Delivered > l.maxDeliver {
			// The previous attempt was the last one and its instance died
			// before settling it.
			m.Reject(errors.New("instance stopped during the last delivery attempt"))
			continue
		}
		live = append(live, m)
	}
	l.m.pending.Set(float64(pending))
	l.m.batchSize.Observe(float64(len(live)))
	l.m.inFlight.Inc()
	l.calls.begin(live)
	var herr error
	if len(live) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		herr = BatchHandlerFunc(l.h.HandleBatch).HandleBatch(ctx, live)
		if herr == nil && ctx.Err() != nil {
			herr = fmt.Errorf("%w after %s", context.DeadlineExceeded, l.timeout)
		}
		cancel()
	}
	l.m.inFlight.Dec()
	l.m.duration.Observe(time.Since(start).Seconds())
	l.m.invocations.Add(float64(len(live)))
	if herr != nil {
		e := AsError(herr)
		l.log.Warn("batch failed", "size", len(live), "code", e.Code, "err", herr)
	}
	for _, m := range msgs {
		l.settle(m, herr)
	}
}

// settle acks, retries or dead-letters one message after its batch ran.
func (l *streamLoop) settle(m *Msg, batchErr error) {
	rm := m.js
	switch {
	case m.rejected != nil:
		l.deadLetter(m, m.rejected)
	case m.failed != nil || batchErr != nil:
		err := m.failed
		if err == nil {
			err = batchErr
		}
		l.m.errorf(AsError(err).Code)
		if m.Delivered >= l.maxDeliver {
			l.deadLetter(m, err)
			return
		}
		l.calls.failed(m, err)
		if nerr := rm.NakWithDelay(l.delay(m.Delivered)); nerr != nil {
			l.log.Warn("nak failed", "seq", m.Seq, "err", nerr)
		}
	default:
		l.calls.succeeded(m)
		if err := rm.Ack(); err != nil {
			l.log.Warn("ack failed", "seq", m.Seq, "err", err)
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
func (l *streamLoop) deadLetter(m *Msg, cause error) {
	rm := m.js
	h := make(nats.Header, len(m.Header)+6)
	for k, v := range m.Header {
		h[k] = v
	}
	reason := cause.Error()
	if e := (*Error)(nil); errors.As(cause, &e) {
		reason = e.Msg
		if e.Err != nil {
			reason += ": " + e.Err.Error()
		}
	}
	h[HeaderDLQError] = []string{reason}
	h[HeaderDLQDeliveries] = []string{strconv.Itoa(m.Delivered)}
	h[HeaderDLQStream] = []string{m.Stream}
	h[HeaderDLQSeq] = []string{strconv.FormatUint(m.Seq, 10)}
	h[HeaderDLQSubject] = []string{m.Subject}
	if id := m.Header.Get(HeaderMsgID); id != "" {
		// Nats-Msg-Id must change (it de-duplicates the DLQ publish), so
		// the client's own id travels on in its own header.
		h[HeaderDLQMsgID] = []string{id}
	}
	h[HeaderMsgID] = []string{"dlq:" + m.Stream + ":" + strconv.FormatUint(m.Seq, 10)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := l.js.PublishMsg(ctx, &nats.Msg{Subject: "dlq." + l.name, Header: h, Data: m.Data})
	if err != nil {
		l.log.Error("dead-letter publish failed; will retry", "seq", m.Seq, "err", err)
		_ = rm.NakWithDelay(time.Second)
		return
	}
	l.m.deadLetters.Inc()
	l.calls.dead(m, cause)
	l.log.Warn("dead-lettered", "seq", m.Seq, "subject", m.Subject, "deliveries", m.Delivered, "reason", reason)
	if err := rm.Term(); err != nil {
		l.log.Warn("term failed", "seq", m.Seq, "err", err)
	}
}

// stop drains: no more pulls, buffered messages are still handled and
// settled, then the loop ends (or ctx does).
func (l *streamLoop) stop(ctx context.Context) error {
	l.it.Drain()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		l.it.Stop()
		return fmt.Errorf("drain %s: %w", l.name, ctx.Err())
	}
}

// handlerBatch runs a per-message Handler over a batch, at most
// concurrency at once. A 4xx other than 408/429 cannot succeed on retry, so
// it dead-letters at once; any other error is retried.
type handlerBatch struct {
	h           Handler
	concurrency int
}

func (hb handlerBatch) HandleBatch(ctx context.Context, batch []*Msg) error {
	ForEach(batch, hb.concurrency, func(_ int, m *Msg) {
		req := NewRequest(m.Subject, m.Data, m.Header)
		err := HandlerFunc(hb.h.Handle).Handle(ctx, req)
		if err != nil {
			e := AsError(err)
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

// ForEach calls fn(i, items[i]) for every item on up to concurrency
// goroutines and returns when all calls have: for batch handlers whose
// messages (or other pieces of work) are independent.
func ForEach[T any](items []T, concurrency int, fn func(i int, item T)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(concurrency, 1), len(items)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(items); i = int(next.Add(1)) - 1 {
				fn(i, items[i])
			}
		})
	}
	wg.Wait()
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

func (f forwarder) HandleBatch(ctx context.Context, batch []*Msg) error {
	return handlerBatch{h: HandlerFunc(f.call), concurrency: f.concurrency}.HandleBatch(ctx, batch)
}

func (f forwarder) call(ctx context.Context, req *Request) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	resp, err := f.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: f.subject, Header: req.Header, Data: req.Data})
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &Error{Status: 503, Code: "no_instances", Msg: "no instance is serving " + f.subject, Err: err}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return &Error{Status: 504, Code: "timeout", Msg: "function timed out", Err: err}
	case err != nil:
		return Internal(err)
	}
	if e := ErrorFromHeaders(resp.Header); e != nil {
		return e
	}
	req.Respond(resp.Data)
	return nil
}
