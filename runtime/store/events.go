package store

import "context"

// Counts are behaviour event counts by type.
type Counts struct {
	View  int64 `json:"view"`
	Click int64 `json:"click"`
	Cart  int64 `json:"cart"`
	Buy   int64 `json:"buy"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.View += o.View
	c.Click += o.Click
	c.Cart += o.Cart
	c.Buy += o.Buy
}

// EventBatch is what one stream message contributed to item counters; Seq
// (the stream sequence) makes applying it idempotent.
type EventBatch struct {
	Seq   uint64
	Items map[string]Counts
}

// Events is the behaviour event domain: per-item counters.
type Events interface {
	// ApplyEvents adds each batch's counts to its items' counters, skipping
	// batches whose Seq was applied before, and returns how many batches
	// were new. Durable on return.
	ApplyEvents(ctx context.Context, batches []EventBatch) (applied int, err error)
	// ItemStats returns an item's counters (zero when it has none).
	ItemStats(ctx context.Context, itemID string) (Counts, error)
}
