package storetest

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

// BenchOrders makes n orders of users drawn from a pool of users, for the
// backends' PutOrders benchmarks: a big batch spans every shard and a batch
// of one touches one user. Order ids are prefix plus the index.
func BenchOrders(rnd *rand.Rand, prefix string, n, users int, at time.Time) []store.Order {
	orders := make([]store.Order, n)
	for i := range orders {
		orders[i] = store.Order{
			OrderID:    prefix + strconv.Itoa(i),
			UserID:     1 + rnd.Int64N(int64(users)),
			Items:      []store.Item{{SKU: "sku-1001", Qty: 1, PriceCents: 1999}, {SKU: "sku-2002", Qty: 2, PriceCents: 500}},
			TotalCents: 2999,
			Currency:   "CNY",
			Status:     "created",
			CreatedAt:  at.Add(time.Duration(i) * time.Microsecond),
		}
	}
	return orders
}
