package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
)

// Idempotency-Key handling. One record per key lives in ORDERS_IDEM (TTL
// 24h, so a key is honoured for at least 24 hours after its last write)
// under "k." + hex(sha256(key)):
//
//   - The first call creates the record (kv.Create, which only one call can
//     win) in state pending, holding the order_id and created_at it chose,
//     publishes the order and then writes state done with the response.
//   - Every other call reads the record: a different body hash is 422; done
//     replays the response; pending is polled, within the call's deadline,
//     until it is done.
//   - If the owner fails to publish it marks the record failed; a pending
//     record older than the function's timeout belongs to a call that died.
//     Either way the next call takes the record over (kv.Update on the
//     revision it read, so only one can) and publishes the SAME order_id and
//     created_at again. The owner never deletes the record: its publish may
//     have reached the stream even though the ack was lost, and a fresh
//     order_id would then make a second order. Publishing the same order
//     twice is harmless: JetStream drops the copy within its duplicate
//     window (Nats-Msg-Id = order_id), and the store keeps one row per
//     order_id after that.
//
// "Same body" means the same order (user_id, items, currency): the hash
// covers the canonical encoding, so key order and white space do not matter.

// MaxIdempotencyKeyLen bounds the Idempotency-Key header.
const MaxIdempotencyKeyLen = 255

const (
	idemPending = "pending"
	idemDone    = "done"
	idemFailed  = "failed"
)

// idemRecord is the value kept for one Idempotency-Key.
type idemRecord struct {
	BodyHash  string          `json:"body_sha256"`
	State     string          `json:"state"`
	OrderID   string          `json:"order_id"`
	CreatedAt int64           `json:"created_at_us"` // Unix microseconds
	Total     int64           `json:"total_cents"`
	Response  json.RawMessage `json:"response,omitempty"`
}

func idemKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "k." + hex.EncodeToString(sum[:])
}

// handleIdempotent serves a call with an Idempotency-Key; buf holds the
// canonical prefix of the order message.
func (a *Accept) handleIdempotent(ctx context.Context, req *runtime.Request, key string, buf *[]byte, total int64) error {
	if len(key) > MaxIdempotencyKeyLen {
		return runtime.BadRequest(runtime.HeaderIdempotencyKey, "must be at most %d characters", MaxIdempotencyKeyLen)
	}
	sum := sha256.Sum256(*buf)
	hash := hex.EncodeToString(sum[:])
	scoped := key
	if uid, ok := req.UserID(); ok {
		// One user's keys are theirs: another user's same key is another
		// record, so it neither collides with theirs (a 422) nor tells
		// that the key was used.
		scoped = "u" + strconv.FormatInt(uid, 10) + ":" + key
	}
	kk := idemKey(scoped)
	canon := len(*buf)
	delay := time.Millisecond
	create := true // a fresh key is the common case: one round trip
	for {
		if create {
			now := a.now()
			id, err := a.ids.next(now)
			if err != nil {
				return runtime.Internal(fmt.Errorf("order id: %w", err))
			}
			rec := idemRecord{BodyHash: hash, State: idemPending, OrderID: id, CreatedAt: now.UnixMicro(), Total: total}
			rev, err := a.idem.Create(ctx, kk, mustJSON(rec))
			switch {
			case err == nil:
				return a.finish(ctx, req, kk, rev, rec, buf, canon)
			case !errors.Is(err, jetstream.ErrKeyExists):
				return a.idemUnavailable(ctx, req, err)
			}
			create = false // another call owns the key: follow it
		}
		e, err := a.idem.Get(ctx, kk)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			create = true // the record expired in between
			continue
		}
		if err != nil {
			return a.idemUnavailable(ctx, req, err)
		}
		var rec idemRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return runtime.Internal(fmt.Errorf("idempotency record %s: %w", kk, err))
		}
		if rec.BodyHash != hash {
			return runtime.Errorf(http.StatusUnprocessableEntity, "idempotency_key_reused",
				"this Idempotency-Key was already used with a different request body")
		}
		switch {
		case rec.State == idemDone:
			resp := rec.Response
			if len(resp) == 0 {
				resp = acceptedResponse(rec.OrderID, rec.Total)
			}
			respondAccepted(req, resp)
			return nil
		case rec.State == idemFailed || time.Since(e.Created()) > a.lease:
			rec.State = idemPending
			rev, err := a.idem.Update(ctx, kk, mustJSON(rec), e.Revision())
			switch {
			case err == nil:
				return a.finish(ctx, req, kk, rev, rec, buf, canon)
			case runtime.IsKVConflict(err):
				continue // another call took it over first
			default:
				return a.idemUnavailable(ctx, req, err)
			}
		}
		// Pending and owned by a live call: wait for it.
		if !sleepCtx(ctx, delay) {
			return inProgress(req)
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// finish publishes the order of rec, which this call owns at revision rev,
// then records and sends the response.
func (a *Accept) finish(ctx context.Context, req *runtime.Request, kk string, rev uint64, rec idemRecord, buf *[]byte, canon int) error {
	*buf = appendIdentity((*buf)[:canon], rec.OrderID, time.UnixMicro(rec.CreatedAt))
	if err := a.publish(ctx, rec.OrderID, *buf); err != nil {
		// Let the next retry take over at once instead of after the lease.
		// The request's context may be spent; this is best effort.
		rec.State = idemFailed
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = a.idem.Update(uctx, kk, mustJSON(rec), rev)
		cancel()
		return unavailable(err)
	}
	resp := acceptedResponse(rec.OrderID, rec.Total)
	rec.State, rec.Response = idemDone, resp
	if _, err := a.idem.Put(ctx, kk, mustJSON(rec)); err != nil {
		// The order is durable, so answer 202. The record stays pending:
		// a retry takes it over after the lease and re-publishes the same
		// order_id, which is de-duplicated.
		a.log.Warn("idempotency record not completed", "order_id", rec.OrderID, "err", err)
	}
	respondAccepted(req, resp)
	return nil
}

func (a *Accept) idemUnavailable(ctx context.Context, req *runtime.Request, err error) error {
	if ctx.Err() != nil {
		return inProgress(req)
	}
	return unavailable(fmt.Errorf("idempotency bucket: %w", err))
}

// inProgress answers a call whose key is still being processed by another
// call when its own deadline comes.
func inProgress(req *runtime.Request) *runtime.Error {
	req.SetHeader(runtime.HeaderRetryAfter, "1")
	return runtime.Errorf(http.StatusConflict, "idempotency_key_in_use",
		"a request with this Idempotency-Key is still in progress; retry later")
}

// sleepCtx sleeps for d unless that would run into ctx's deadline (minus
// a margin to answer in); it reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	const margin = 25 * time.Millisecond
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d+margin {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// mustJSON marshals values that cannot fail to marshal.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("orders: marshal %T: %v", v, err))
	}
	return b
}
