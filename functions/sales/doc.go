// Package sales is the flash-sale functions (docs/API.md section 7): a sale
// sells a fixed stock of one SKU between two instants, at most per_user
// units to one user, and every unit sold becomes exactly one order in the
// normal order pipeline (orders.submit, stored by order-persist).
//
//   - sales.put (fn.sales.put, PUT /v1/sales/{sale_id}, auth admin) creates
//     or updates a sale; its stock may be raised or lowered, never below the
//     units sold.
//   - sales.get (fn.sales.get, GET /v1/sales/{sale_id}) reports stock, sold,
//     remaining and status.
//   - sales.order (fn.sales.order, POST /v1/sales/{sale_id}/orders) buys.
//
// The stock lives in the SALES KV bucket as a runtime/stock key split into
// buckets. A purchase's order id is derived from the sale, the user and
// the user's purchase number, and is the stock claim id: a reservation,
// then the publish to orders.submit with Nats-Msg-Id = order id, then the
// user's purchase record. A call killed anywhere in between is finished by
// its retry (the same purchase number gives the same order id: the
// reservation is replayed, the publish de-duplicated), and the reconciler
// of sales.order publishes the orders of reservations nobody retried. See
// order.go.
package sales

import (
	"github.com/surgefn/surge/functions/orders"
	"github.com/surgefn/surge/runtime"
)

// Names this package shares with its manifest and with clients.
const (
	// Bucket is the KV bucket of sales, their stock and the users' purchases.
	Bucket = "SALES"
	// SubjectSubmit is where the orders of a sale go: the order pipeline.
	SubjectSubmit = orders.SubjectSubmit
)

func init() {
	runtime.Register(runtime.Module{ID: "sales.put", New: func() any { return new(Put) }})
	runtime.Register(runtime.Module{ID: "sales.get", New: func() any { return new(Get) }})
	runtime.Register(runtime.Module{ID: "sales.order", New: func() any { return new(Order) }})
}
