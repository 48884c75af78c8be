// Package sales is the flash-sale functions (docs/API.md section 7): a sale
// sells a fixed stock of one SKU between two instants, at most per_user
// units to one user, and every unit sold becomes exactly one order in the
// normal order pipeline, listed under its user.
//
//   - sales.put (fn.sales.put, PUT /v1/sales/{sale_id}, auth admin) creates
//     or updates a sale; its stock may be raised or lowered, never below the
//     units sold.
//   - sales.get (fn.sales.get, GET /v1/sales/{sale_id}) reports stock, sold,
//     remaining and status.
//   - sales.order (fn.sales.order, POST /v1/sales/{sale_id}/orders) buys.
//
// The stock of sale s is a runtime/stock.Ledger key on the SALES_LEDGER
// stream: "sales.ledger.s.set" holds the totals PUT gave it, and
// "sales.ledger.s.take" the purchases. A take message is the reservation
// and the order at once: its takes header is what the ledger counts, its
// body the orders in the form orders.submit takes, which the sale-persist
// function (handler orders.persist) stores like any other order. So stock
// taken without its order, or an order without its stock, cannot happen,
// wherever a process is killed. The sale records (price, per_user, times)
// are in the SALES KV bucket. See order.go.
package sales

import (
	"github.com/surgefn/surge/runtime"
)

// Names this package shares with its manifest and with clients.
const (
	// Bucket is the KV bucket of the sale records.
	Bucket = "SALES"
	// LedgerStream is the stream of the sales' stock ledger; it keeps its
	// messages (maxAge unlimited): they are the record of what was sold.
	LedgerStream = "SALES_LEDGER"
	// LedgerPrefix starts the ledger's subjects: LedgerPrefix.<sale_id>.set
	// and LedgerPrefix.<sale_id>.take.
	LedgerPrefix = "sales.ledger"
)

func init() {
	runtime.Register(runtime.Module{ID: "sales.put", New: func() any { return new(Put) }})
	runtime.Register(runtime.Module{ID: "sales.get", New: func() any { return new(Get) }})
	runtime.Register(runtime.Module{ID: "sales.order", New: func() any { return new(Order) }})
}
