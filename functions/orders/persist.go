package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Persist is orders.persist, the consumer of orders.submit on the ORDERS
// stream. Per batch it decodes and validates every message (an invalid one
// is dead-lettered on dlq.order-persist with the field at fault), writes
// the valid ones with ONE Store.PutOrders call, and then, on a network
// store, refreshes the first page of every affected user in ORDERS_HOT (the
// embedded store serves first pages itself: hotCache.local).
//
// Exactly once: JetStream de-duplicates publishes on Nats-Msg-Id within its
// window; everything else (a redelivery after a crash, a re-publish under
// another Nats-Msg-Id) is caught by PutOrders, which skips order_ids it
// already has, and by the de-duplication inside a batch below. Messages are
// acked only after PutOrders returned, which is durable on return.
//
// created_at: the order's own created_at when present (order-accept always
// sets it). Otherwise the time the stream stored the message (runtime.Msg
// Time), which is the same on every redelivery; without one (tests calling
// HandleBatch directly) the time the batch is handled. Either way the first
// successful write wins (PutOrders skips an existing order_id).
type Persist struct {
	// CacheWorkers bounds the concurrent ORDERS_HOT refreshes of one batch
	// (default 32).
	CacheWorkers int `json:"cacheWorkers,omitempty"`
	// CacheInterval is the least time between the starts of two ORDERS_HOT
	// refresh rounds (default 100ms; "0s" for none). The batches stored
	// meanwhile share the next round, so a user's page is written once per
	// round however many of their orders it covers. A page then trails the
	// store by up to this much (plus the round), and each batch's ack waits
	// up to this much longer.
	CacheInterval *manifests.Duration `json:"cacheInterval,omitempty"`

	store store.Orders
	clock runtime.Clock
	log   *slog.Logger
	hot   *hotCache
}

var (
	_ runtime.BatchHandler = (*Persist)(nil)
	_ runtime.Provisioner  = (*Persist)(nil)
	_ runtime.Validator    = (*Persist)(nil)
)

// Validate checks the config.
func (p *Persist) Validate() error {
	if p.CacheWorkers < 0 || p.CacheWorkers > 1024 {
		return fmt.Errorf("cacheWorkers: must be 0 (default) to 1024, got %d", p.CacheWorkers)
	}
	if d := p.CacheInterval; d != nil && (d.Std() < 0 || d.Std() > 10*time.Second) {
		return fmt.Errorf("cacheInterval: must be 0s to 10s, got %s", d.Std())
	}
	return nil
}

// Provision keeps the store and opens ORDERS_HOT. On a local store, which
// serves first pages itself, it purges the bucket: releases before c113463
// refreshed its pages on that store too, and a rollback to one of them
// would serve the pages it left (up to the bucket's 1h TTL) without every
// order stored since.
func (p *Persist) Provision(ctx context.Context, env *runtime.Env) error {
	orders, err := store.As[store.Orders](env.Store)
	if err != nil {
		return err
	}
	kv, err := env.KV(BucketHot)
	if err != nil {
		return err
	}
	workers := p.CacheWorkers
	if workers == 0 {
		workers = 32
	}
	p.store, p.clock, p.log = orders, env.Clock, env.Logger
	p.hot = &hotCache{kv: kv, store: orders, workers: workers, js: env.JS, bucket: BucketHot}
	p.hot.rounds.interval = defaultCacheInterval
	if p.CacheInterval != nil {
		p.hot.rounds.interval = p.CacheInterval.Std()
	}
	if p.hot.local() && env.JS != nil {
		// Best effort, as the bucket is a cache: a failure is logged.
		if err := purgeBucket(ctx, env.JS, BucketHot); err != nil && p.log != nil {
			p.log.Warn("could not purge the hot pages of an earlier release", "bucket", BucketHot, "err", err)
		}
	}
	return nil
}

// purgeBucket removes every key of the KV bucket (its stream, KV_<bucket>).
func purgeBucket(ctx context.Context, js jetstream.JetStream, bucket string) error {
	s, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return err
	}
	return s.Purge(ctx)
}

// defaultCacheInterval is Persist.CacheInterval when the config has none:
// measured with surge bench (1000 users), 100ms took orders-http from 5.0k
// to 5.8-6.9k/s over no interval.
const defaultCacheInterval = 100 * time.Millisecond

// HandleBatch stores the batch's valid orders; see Persist.
func (p *Persist) HandleBatch(ctx context.Context, batch []*runtime.Msg) error {
	orders, users, redelivered := decodeBatch(batch, p.clock.Now)
	if len(orders) == 0 {
		return nil
	}
	start := time.Now()
	inserted, err := p.store.PutOrders(ctx, orders)
	stored := time.Since(start)
	if err != nil {
		return fmt.Errorf("store %d orders: %w", len(orders), err)
	}
	// A local store serves first pages itself (hotCache.local). Else
	// refresh when something changed, and on any redelivery: a previous
	// attempt may have stored the orders and died before refreshing.
	if p.hot.local() || inserted == 0 && !redelivered {
		return nil
	}
	// The cache gets part of the remaining time, so that a slow refresh
	// cannot time the batch out and make it be retried.
	rctx, cancel := context.WithTimeout(ctx, remaining(ctx)/2)
	defer cancel()
	defer func() {
		p.log.Debug("batch persisted", "orders", len(orders), "inserted", inserted, "users", len(users),
			"store", stored, "cache", time.Since(start)-stored)
	}()
	// Every order new and its user's own: the pages may take them as they
	// are (a network store merges instead of reading pages back).
	var fresh map[int64][]store.Order
	if inserted == len(orders) {
		fresh = make(map[int64][]store.Order, len(users))
		for _, o := range orders {
			fresh[o.UserID] = append(fresh[o.UserID], o)
		}
	}
	if failed, err := p.hot.refreshGrouped(rctx, users, fresh); err != nil {
		// The orders are stored, so the batch is acked anyway. A page that
		// could not be refreshed was marked stale if the bucket still
		// answered (the next read rebuilds it from the store); otherwise it
		// is refreshed by the user's next order, or expires.
		p.log.Warn("hot cache refresh incomplete", "users", len(users), "failed", failed, "err", err)
	}
	return nil
}

// MaxSubmitBatch is the most orders one orders.submit message may carry.
const MaxSubmitBatch = 1000

// decodeBatch decodes every message, rejecting invalid ones (an invalid
// order inside an array on its own, naming its index), and returns the
// orders to store (one per order_id, the first in stream order), the
// distinct users they belong to, and whether any message is a redelivery.
func decodeBatch(batch []*runtime.Msg, now func() time.Time) (orders []store.Order, users []int64, redelivered bool) {
	// Split the arrays first, so that the orders and the sets below are
	// made once at their size.
	split := make([][][]byte, len(batch))
	rejected := make([]bool, len(batch))
	n := 0
	for k, m := range batch {
		if i := firstNonSpace(m.Data); i >= 0 && m.Data[i] == '[' {
			items, err := splitSubmitBatch(m.Data)
			if err != nil {
				m.Reject(err)
				rejected[k] = true
				continue
			}
			split[k] = items
			n += len(items)
			continue
		}
		n++
	}
	orders = make([]store.Order, 0, n)
	seen := make(map[string]struct{}, n)
	seenUser := make(map[int64]struct{}, min(n, 1024))
	var batchTime time.Time
	clock := func() time.Time {
		if batchTime.IsZero() {
			batchTime = now()
		}
		return batchTime
	}
	add := func(o store.Order) {
		if _, dup := seen[o.OrderID]; dup {
			return // the same order twice in one batch: store it once
		}
		seen[o.OrderID] = struct{}{}
		orders = append(orders, o)
		if _, ok := seenUser[o.UserID]; !ok {
			seenUser[o.UserID] = struct{}{}
			users = append(users, o.UserID)
		}
	}
	var (
		dec   submitDecoder
		parts []part
	)
	for k, m := range batch {
		if m.Delivered > 1 {
			redelivered = true
		}
		at := clock
		if !m.Time.IsZero() {
			// The stream's timestamp: the same on every redelivery.
			t := m.Time
			at = func() time.Time { return t }
		}
		if items := split[k]; items != nil {
			// An item that is not JSON at all makes the message not an
			// array of orders: rejected whole, none of its orders stored.
			// Otherwise each invalid order is rejected on its own.
			parts = parts[:0]
			for i, raw := range items {
				o, err := dec.decode(raw, at)
				if err != nil && !json.Valid(raw) {
					parts = parts[:0]
					m.Reject(notAnArray(m.Data))
					break
				}
				parts = append(parts, part{i, raw, o, err})
			}
			for _, p := range parts {
				if p.err != nil {
					m.RejectPart(p.index, p.raw, p.err)
					continue
				}
				add(p.order)
			}
			continue
		}
		if rejected[k] {
			continue // not an array of orders (above)
		}
		o, err := dec.decode(m.Data, at)
		if err != nil {
			m.Reject(err)
			continue
		}
		add(o)
	}
	return orders, users, redelivered
}

// part is one order of a batched message, decoded or not.
type part struct {
	index int
	raw   []byte
	order store.Order
	err   *runtime.Error
}

// splitSubmitBatch splits a batched orders.submit body, a JSON array of 1
// to MaxSubmitBatch orders, into its orders (each still to be decoded, and
// each to be checked for being JSON: splitArray checks only the array).
func splitSubmitBatch(data []byte) ([][]byte, *runtime.Error) {
	items, ok := splitArray(data)
	if !ok {
		var raws []json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, runtime.BadRequest("", "a batch must be a JSON array of orders: %s", err.Error())
		}
		// Not reached: splitArray accepts every valid array
		// (FuzzSplitArray); kept so that a miss there costs only speed.
		items = make([][]byte, len(raws))
		for i, r := range raws {
			items[i] = r
		}
	}
	switch {
	case len(items) == 0:
		return nil, runtime.BadRequest("", "empty array: want 1 to %d orders", MaxSubmitBatch)
	case len(items) > MaxSubmitBatch:
		return nil, runtime.BadRequest("", "%d orders: at most %d per message", len(items), MaxSubmitBatch)
	}
	return items, nil
}

// notAnArray is the rejection of a batch that is not JSON, in the words of
// encoding/json.
func notAnArray(data []byte) *runtime.Error {
	var raws []json.RawMessage
	msg := "invalid JSON"
	if err := json.Unmarshal(data, &raws); err != nil {
		msg = err.Error()
	}
	return runtime.BadRequest("", "a batch must be a JSON array of orders: %s", msg)
}

// splitArray splits a JSON array into its items in one pass that follows
// only strings and brackets: ok is false when the array itself is not
// well formed (no closing bracket, an empty item, something after it),
// and the items' own syntax is left to their decoding. Measured, the
// json.Unmarshal into []json.RawMessage it replaces validated and scanned
// every byte twice: 9% of order-persist's CPU on 100-order messages.
func splitArray(data []byte) (items [][]byte, ok bool) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '[' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return items, skipSpace(data, i+1) == len(data)
	}
	for {
		start, depth := i, 0
	item:
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				for i++; i < len(data) && data[i] != '"'; i++ {
					if data[i] == '\\' {
						i++
					}
				}
				if i >= len(data) {
					return nil, false
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 {
					break item
				}
				depth--
			case ',':
				if depth == 0 {
					break item
				}
			}
		}
		if i == len(data) {
			return nil, false
		}
		end := i
		for end > start && isSpace(data[end-1]) {
			end--
		}
		if end == start || data[i] == '}' {
			return nil, false
		}
		items = append(items, data[start:end:end])
		if data[i] == ']' {
			return items, skipSpace(data, i+1) == len(data)
		}
		i = skipSpace(data, i+1)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// remaining is the time left before ctx's deadline (a minute without one).
func remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return time.Minute
}

// hotKey is the ORDERS_HOT key of a user's first page.
func hotKey(userID int64) string {
	var b [24]byte
	return string(appendInt(append(b[:0], "u."...), userID))
}

// errCacheConflicts means a key kept changing under a refresh.
var errCacheConflicts = errors.New("too many concurrent updates")

// isKeyNotFound reports a missing (or deleted, or expired) KV key.
func isKeyNotFound(err error) bool { return errors.Is(err, jetstream.ErrKeyNotFound) }
