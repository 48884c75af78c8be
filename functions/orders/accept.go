package orders

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
)

// Accept is orders.accept: POST /v1/orders and fn.orders.accept. It answers
// 202 {"order_id","status":"accepted","total_cents"} only after JetStream
// acked the order on orders.submit, so an accepted order is never lost;
// order-persist stores it. Through a route with auth: user, an order for
// another user than the signed-in one is 403 forbidden.
type Accept struct {
	// GroupCommit publishes the orders of concurrent calls together; see
	// GroupCommit (on by default).
	GroupCommit GroupCommit `json:"groupCommit"`

	js     jetstream.JetStream
	commit *committer
	idem   jetstream.KeyValue
	clock  runtime.Clock
	log    *slog.Logger
	ids    *idGen
	// lease is how long a pending Idempotency-Key record belongs to the
	// call that wrote it; after that another call may take it over.
	lease time.Duration
}

var (
	_ runtime.Handler      = (*Accept)(nil)
	_ runtime.Provisioner  = (*Accept)(nil)
	_ runtime.Validator    = (*Accept)(nil)
	_ runtime.CleanerUpper = (*Accept)(nil)
)

// Validate checks the config.
func (a *Accept) Validate() error { return a.GroupCommit.validate() }

// Cleanup stops the group committer; the host calls it after the
// instance drained, so no call is waiting.
func (a *Accept) Cleanup() error {
	if a.commit != nil {
		a.commit.stop()
	}
	return nil
}

// Provision opens the ORDERS_IDEM bucket. The ORDERS stream that captures
// orders.submit is declared under spec.publishes, so the host made sure of
// it.
func (a *Accept) Provision(ctx context.Context, env *runtime.Env) error {
	if err := env.RequireStream(ctx, SubjectSubmit); err != nil {
		return err
	}
	kv, err := env.KV(BucketIdem)
	if err != nil {
		return err
	}
	a.js, a.idem, a.clock, a.log = env.JS, kv, env.Clock, env.Logger
	a.ids = newIDGen()
	if a.GroupCommit.MaxBatch != 1 {
		a.commit = newCommitter(env.JS, a.GroupCommit, env.JS.Conn().MaxPayload())
	}
	a.lease = env.Function.Spec.Timeout.Std()
	if a.lease <= 0 {
		a.lease = 2 * time.Second
	}
	return nil
}

// Handle validates the order, publishes it and answers 202.
func (a *Accept) Handle(ctx context.Context, req *runtime.Request) error {
	in := getInput()
	if err := decodeInput(req.Data, in); err != nil {
		return err
	}
	total, verr := in.validate()
	if verr != nil {
		return verr
	}
	if err := req.AuthorizeUser(in.UserID); err != nil {
		return err // 403: an order for another user than the signed-in one
	}
	buf := getBuf()
	defer putBuf(buf)
	*buf = appendCanonical((*buf)[:0], in, total)
	putInput(in) // everything needed from it is in buf now
	if key := req.Header.Get(runtime.HeaderIdempotencyKey); key != "" {
		return a.handleIdempotent(ctx, req, key, buf, total)
	}
	now := a.now()
	id, err := a.ids.next(now)
	if err != nil {
		return runtime.Internal(fmt.Errorf("order id: %w", err))
	}
	*buf = appendIdentity(*buf, id, now)
	if err := a.publish(ctx, id, *buf); err != nil {
		return unavailable(err)
	}
	respondAccepted(req, acceptedResponse(id, total))
	return nil
}

// now is the creation time of a new order, at the microsecond precision
// every store backend keeps, so the time in the stream is the stored one.
func (a *Accept) now() time.Time {
	return a.clock.Now().UTC().Truncate(time.Microsecond)
}

// publish makes the order durable on orders.submit and returns once the
// stream acked it: through the group committer (the store de-duplicates
// on order_id), or alone, de-duplicated by JetStream on its order_id.
func (a *Accept) publish(ctx context.Context, orderID string, data []byte) error {
	if a.commit != nil {
		if err := a.commit.commit(ctx, orderID, data); err != nil {
			return fmt.Errorf("publish order %s: %w", orderID, err)
		}
		return nil
	}
	msg := &nats.Msg{
		Subject: SubjectSubmit,
		Header:  nats.Header{runtime.HeaderMsgID: []string{orderID}},
		Data:    data,
	}
	if _, err := runtime.PublishDurable(ctx, a.js, msg); err != nil {
		return fmt.Errorf("publish order %s: %w", orderID, err)
	}
	return nil
}

// decodeInput decodes a POST /v1/orders body into in: the compact form on
// the fast path (decodeCanonicalInput), anything else strictly.
func decodeInput(data []byte, in *orderInput) *runtime.Error {
	if decodeCanonicalInput(data, in) {
		return nil
	}
	in.reset()
	return decodeStrict(data, in, acceptFields)
}

// inputPool recycles decoded request bodies and their item arrays.
var inputPool = sync.Pool{New: func() any { return new(orderInput) }}

func getInput() *orderInput { return inputPool.Get().(*orderInput) }

// putInput clears in, items included: encoding/json decodes into the
// elements already in a slice's capacity without zeroing them, so a field
// missing from the next body would otherwise keep this body's value.
func putInput(in *orderInput) {
	if cap(in.Items) > MaxItems {
		return
	}
	in.reset()
	inputPool.Put(in)
}

// reset zeroes in, keeping the capacity of its items.
func (in *orderInput) reset() {
	clear(in.Items[:cap(in.Items)])
	*in = orderInput{Items: in.Items[:0]}
}

func respondAccepted(req *runtime.Request, body []byte) {
	req.SetStatus(http.StatusAccepted)
	req.Respond(body)
}

// unavailable is the answer when the order could not be made durable: the
// caller should retry (with the same Idempotency-Key, to be safe); a 503
// carries Retry-After (wire.SetError).
func unavailable(err error) *runtime.Error {
	return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
		Msg: "the order could not be made durable; retry later", Err: err}
}
