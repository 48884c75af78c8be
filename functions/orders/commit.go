package orders

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
)

// GroupCommit is how order-accept publishes the orders of concurrent calls
// together (spec.config.groupCommit): one orders.submit message, a JSON
// array, for the orders that arrived while the previous publishes were in
// flight, each caller answered when that message is acked. An order that
// arrives while a publish slot is free goes out at once, alone, as before,
// so a quiet system keeps its latency and batches form only under load.
type GroupCommit struct {
	// MaxBatch bounds the orders in one message (default 100; 1 turns
	// group commit off: one message per order). At most MaxSubmitBatch.
	MaxBatch int `json:"maxBatch,omitempty"`
	// Wait is how long a batch may wait for more orders once it has a
	// free publish slot (default 0: it goes at once). A few hundred
	// microseconds make bigger batches at a steady rate.
	Wait manifests.Duration `json:"wait,omitempty"`
	// Inflight bounds the messages being published at once per instance
	// (default 2); calls beyond them wait and join the next batch. An
	// instance takes at most Inflight x MaxBatch orders per publish round
	// trip. Measured on 2 cores, orders-http closed loop, alternating
	// runs: 2 slots took 14.55k/s at 108 us of CPU per order, 4 slots
	// 13.83k/s at 115 us: fewer slots make bigger batches and fewer
	// JetStream messages (1 slot: 14.78k/s, but half the headroom for a
	// cluster's longer round trips).
	Inflight int `json:"inflight,omitempty"`
}

// Defaults of GroupCommit.
const (
	defaultCommitBatch    = 100
	defaultCommitInflight = 2
)

func (g *GroupCommit) validate() error {
	var errs []error
	if g.MaxBatch < 0 || g.MaxBatch > MaxSubmitBatch {
		errs = append(errs, fmt.Errorf("groupCommit.maxBatch: must be 0 (default %d) to %d, got %d", defaultCommitBatch, MaxSubmitBatch, g.MaxBatch))
	}
	if g.Wait < 0 || g.Wait.Std() > 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("groupCommit.wait: must be 0s to 100ms, got %s", g.Wait.Std()))
	}
	if g.Inflight < 0 || g.Inflight > 256 {
		errs = append(errs, fmt.Errorf("groupCommit.inflight: must be 0 (default %d) to 256, got %d", defaultCommitInflight, g.Inflight))
	}
	return errors.Join(errs...)
}

// pendingOrder is one call's order waiting for its batch's ack.
type pendingOrder struct {
	ctx  context.Context
	id   string
	data []byte     // the order message, owned by the committer
	done chan error // buffered: the committer never blocks on a caller that left
}

// committer batches the orders of one Accept instance.
type committer struct {
	pub      runtime.Publisher
	maxBatch int
	// maxBytes bounds a batch's body: the server refuses a message over
	// its max_payload, and every caller of the batch would get a 503.
	maxBytes int
	wait     time.Duration
	in       chan *pendingOrder
	slots    chan struct{}
	quit     chan struct{}
	stopped  chan struct{}
}

// newCommitter starts the committer of an instance; maxPayload is the
// server's max_payload (nats.Conn.MaxPayload).
func newCommitter(pub runtime.Publisher, g GroupCommit, maxPayload int64) *committer {
	c := &committer{pub: pub, maxBatch: g.MaxBatch, wait: g.Wait.Std(),
		maxBytes: int(max(maxPayload-payloadHeadroom, 1)),
		quit:     make(chan struct{}), stopped: make(chan struct{})}
	if c.maxBatch == 0 {
		c.maxBatch = defaultCommitBatch
	}
	inflight := g.Inflight
	if inflight == 0 {
		inflight = defaultCommitInflight
	}
	c.slots = make(chan struct{}, inflight)
	c.in = make(chan *pendingOrder, c.maxBatch*inflight)
	go c.run()
	return c
}

// commit publishes the order (data is copied) with the orders of other
// calls and returns when the message holding it is acked, or ctx ends.
func (c *committer) commit(ctx context.Context, orderID string, data []byte) error {
	p := &pendingOrder{ctx: ctx, id: orderID, data: append([]byte(nil), data...), done: make(chan error, 1)}
	select {
	case c.in <- p:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.quit:
		return errCommitterStopped
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		// The order may still be stored (its batch is on its way): like a
		// lost ack, which an Idempotency-Key makes safe to retry.
		return ctx.Err()
	}
}

var errCommitterStopped = errors.New("order-accept instance stopped")

// payloadHeadroom is what a batch leaves of max_payload for the headers.
const payloadHeadroom = 16 << 10

func (c *committer) stop() {
	close(c.quit)
	<-c.stopped
}

// run forms batches: it takes the first waiting order, then keeps taking
// more until a publish slot is free, or the batch is full (maxBatch
// orders, or an order that would take the body past maxBytes: that one
// starts the next batch), and hands the batch to a publisher goroutine.
func (c *committer) run() {
	defer close(c.stopped)
	var next *pendingOrder // the order that did not fit the last batch
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-c.in:
			case <-c.quit:
				c.failQueued()
				return
			}
		}
		b := batch{max: c.maxBatch, maxBytes: c.maxBytes}
		b.add(first)
		slot := false
		for !slot && !b.full() && next == nil {
			select {
			case p := <-c.in:
				next = b.add(p)
			case c.slots <- struct{}{}:
				slot = true
			}
		}
		if !slot {
			c.slots <- struct{}{}
		}
		if c.wait > 0 && !b.full() && next == nil {
			next = c.linger(&b)
		}
		if len(b.orders) == 0 {
			<-c.slots
			continue
		}
		go c.publish(b.orders)
	}
}

// batch is the batch being formed.
type batch struct {
	orders        []*pendingOrder
	size          int // body bytes: the orders, their commas and the brackets
	max, maxBytes int
}

func (b *batch) full() bool { return len(b.orders) >= b.max }

// add appends p unless its caller already gave up (an order nobody waits
// for is better not published than stored without an answer); it returns
// p instead when p would take the body past maxBytes, unless the batch is
// empty (an order alone always goes).
func (b *batch) add(p *pendingOrder) *pendingOrder {
	if p.ctx.Err() != nil {
		return nil
	}
	if len(b.orders) > 0 && b.size+len(p.data)+1 > b.maxBytes {
		return p
	}
	b.orders = append(b.orders, p)
	b.size += len(p.data) + 1
	if len(b.orders) == 1 {
		b.size++ // the brackets, less the first order's comma
	}
	return nil
}

// linger takes orders for up to c.wait while the batch has room; it
// returns an order that did not fit.
func (c *committer) linger(b *batch) *pendingOrder {
	t := time.NewTimer(c.wait)
	defer t.Stop()
	for !b.full() {
		select {
		case p := <-c.in:
			if next := b.add(p); next != nil {
				return next
			}
		case <-t.C:
			return nil
		}
	}
	return nil
}

func (c *committer) failQueued() {
	for {
		select {
		case p := <-c.in:
			p.done <- errCommitterStopped
		default:
			return
		}
	}
}

// publish sends one batch and answers its callers: a single order as
// before (Nats-Msg-Id = order_id, the caller's trace), several as one JSON
// array under a batch id of its own. The publish gets the latest of the
// callers' deadlines, so every caller still waiting learns the outcome.
func (c *committer) publish(batch []*pendingOrder) {
	defer func() { <-c.slots }()
	// A caller may have given up while its batch waited for the slot.
	batch = slices.DeleteFunc(batch, func(p *pendingOrder) bool { return p.ctx.Err() != nil })
	if len(batch) == 0 {
		return
	}
	ctx := batch[0].ctx
	msg := &nats.Msg{Subject: SubjectSubmit, Header: nats.Header{}}
	if len(batch) == 1 {
		msg.Header[runtime.HeaderMsgID] = []string{batch[0].id}
		msg.Data = batch[0].data
	} else {
		msg.Data = jsonArray(batch, func(p *pendingOrder) []byte { return p.data })
		msg.Header[runtime.HeaderMsgID] = []string{"batch-" + nuid.Next()}
		ctx = context.Background() // PublishDurable's own budget
		if deadline, ok := latestDeadline(batch); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
	}
	_, err := runtime.PublishDurable(ctx, c.pub, msg)
	if err != nil {
		err = fmt.Errorf("publish %d orders (first %s): %w", len(batch), batch[0].id, err)
	}
	for _, p := range batch {
		p.done <- err
	}
}

// latestDeadline is the latest deadline of the batch's callers; false when
// one of them has none.
func latestDeadline(batch []*pendingOrder) (time.Time, bool) {
	var latest time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			return time.Time{}, false
		}
		if d.After(latest) {
			latest = d
		}
	}
	return latest, true
}

// jsonArray is the JSON array of the items' JSON (raw of each), in one
// allocation.
func jsonArray[T any](items []T, raw func(T) []byte) []byte {
	size := 2
	for _, it := range items {
		size += len(raw(it)) + 1
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, raw(it)...)
	}
	return append(out, ']')
}
