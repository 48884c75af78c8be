// Package orders holds the built-in order functions of surge (docs/API.md
// sections 3 and 4), the hot path of a flash sale:
//
//   - orders.accept (fn.orders.accept, POST /v1/orders) validates an order,
//     gives it a ULID order_id, makes it durable in the ORDERS stream on
//     orders.submit and answers 202 once JetStream acked it. An
//     Idempotency-Key makes retries safe (see idem.go).
//   - orders.persist (stream ORDERS, filter orders.submit) stores batches of
//     orders, from order-accept and from clients publishing directly, exactly
//     once, dead-letters invalid ones with the field at fault, and on a
//     network store (Vitess) refreshes each affected user's first page in
//     the ORDERS_HOT KV bucket.
//   - orders.get (fn.orders.get, GET /v1/orders/{order_id}) reads one order.
//   - orders.list (fn.orders.list, GET /v1/users/{user_id}/orders) lists a
//     user's orders, newest first; page 1 comes from an in-process L1 cache in
//     front of ORDERS_HOT, or of the embedded store itself (hotCache.local).
//
// Their manifests are in manifests/orders.yaml.
package orders

import "github.com/surgefn/surge/runtime"

// Names this package shares with its manifests and with clients.
const (
	// SubjectSubmit is the subject of orders to store (docs/API.md section 4),
	// captured by the ORDERS stream that manifests/orders.yaml declares.
	SubjectSubmit = "orders.submit"
	// BucketIdem keeps Idempotency-Key records for 24 hours.
	BucketIdem = "ORDERS_IDEM"
	// BucketHot keeps each user's first page of orders under "u.<user_id>".
	BucketHot = "ORDERS_HOT"
	// StatusAccepted is the status of every order this package stores.
	StatusAccepted = "accepted"
	// HotPageSize is how many of a user's newest orders ORDERS_HOT keeps.
	HotPageSize = 20
)

func init() {
	runtime.Register(runtime.Module{ID: "orders.accept", New: func() any { return new(Accept) }})
	runtime.Register(runtime.Module{ID: "orders.persist", New: func() any { return new(Persist) }})
	runtime.Register(runtime.Module{ID: "orders.get", New: func() any { return new(Get) }})
	runtime.Register(runtime.Module{ID: "orders.list", New: func() any { return new(List) }})
}
