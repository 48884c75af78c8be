package sales

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// reconcileLoop publishes, every period, the orders of reservations that
// no user record lists: a call killed after its reservation whose user
// never retried. Every instance runs it; a publish of an order that exists
// is de-duplicated (Nats-Msg-Id, then the store's order_id), so running it
// twice, or while the call itself is still publishing, is harmless. It
// only walks sales that are open or ended less than a period ago.
func (o *Order) reconcileLoop(ctx context.Context, period time.Duration) {
	defer close(o.done)
	if period <= 0 {
		return
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.reconcile(ctx, period)
		}
	}
}

// reconcile makes one pass; it reports how many orders it published.
func (o *Order) reconcile(ctx context.Context, period time.Duration) int {
	keys, err := o.kv.ListKeysFiltered(ctx, "sale.*")
	if err != nil {
		return 0
	}
	published := 0
	for k := range keys.Keys() {
		id := strings.TrimPrefix(k, "sale.")
		s, _, err := o.load(ctx, id)
		if err != nil || o.clock.Now().Sub(s.EndsAt) > period {
			continue
		}
		claims, err := o.stock(s).Claims(ctx, stockKey(id))
		if err != nil {
			continue
		}
		for claim, units := range claims {
			user, k, ok := parseOrderID(id, claim)
			if !ok {
				continue
			}
			rec, rev, err := o.purchases(ctx, userKey(id, user))
			if err != nil || len(rec.Orders) >= k {
				continue // recorded: its publish happened before
			}
			if o.publish(ctx, s, user, claim, units) != nil {
				continue
			}
			published++
			_ = o.record(ctx, userKey(id, user), rec, rev, purchase{OrderID: claim, Units: units, Reconciled: true})
			o.log.Info("sale order reconciled", "order_id", claim)
		}
	}
	return published
}

// parseOrderID splits an OrderID of sale into user and purchase number.
func parseOrderID(sale, id string) (user int64, k int, ok bool) {
	rest, ok := strings.CutPrefix(id, sale+"-")
	if !ok {
		return 0, 0, false
	}
	u, n, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	user, err1 := strconv.ParseInt(u, 10, 64)
	k, err2 := strconv.Atoi(n)
	return user, k, err1 == nil && err2 == nil
}
