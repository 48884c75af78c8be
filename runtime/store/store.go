// Package store defines the storage the built-in functions need, behind one
// interface with two backends: buntdb files sharded by user-ID hash
// (runtime/store/buntstore, the embedded default) and a Vitess keyspace
// sharded by the same key (runtime/store/vitess). The conformance suite in
// runtime/store/storetest is what every backend must pass.
//
// Every write is idempotent on its natural key (order_id; user_id+day;
// message_id; stream sequence for event counts), so a redelivered stream
// message never creates a second row, and every write is durable when the
// call returns, so a stream message may be acked right after.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of every backend; wrap with %w, test with errors.Is.
var (
	// ErrNotFound means no record has that key.
	ErrNotFound = errors.New("not found")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store closed")
)

// Item is one order line.
type Item struct {
	SKU        string `json:"sku"`
	Qty        int    `json:"qty"`
	PriceCents int64  `json:"price_cents"`
}

// Order is a stored order. UserID is the shard key.
type Order struct {
	OrderID    string    `json:"order_id"`
	UserID     int64     `json:"user_id"`
	Items      []Item    `json:"items"`
	TotalCents int64     `json:"total_cents"`
	Currency   string    `json:"currency"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
}

// SignIn is one user's sign-in on one day (YYYY-MM-DD in the platform's
// sign-in time zone). Streak counts consecutive days ending on Day.
type SignIn struct {
	UserID    int64     `json:"user_id"`
	Day       string    `json:"date"`
	Streak    int       `json:"streak"`
	CreatedAt time.Time `json:"created_at"`
}

// SMS is one text message and its delivery state.
type SMS struct {
	MessageID string            `json:"message_id"`
	Phone     string            `json:"phone"`
	Template  string            `json:"template"`
	Params    map[string]string `json:"params,omitempty"`
	Text      string            `json:"text,omitempty"`
	Status    string            `json:"status"`
	Attempts  int               `json:"attempts"`
	LastError string            `json:"last_error,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

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

// Store is a storage backend. Implementations are safe for concurrent use.
type Store interface {
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend.
	Close() error

	// PutOrders stores orders, skipping any whose order_id is already
	// stored, and returns how many were new. Durable on return.
	PutOrders(ctx context.Context, orders []Order) (inserted int, err error)
	// GetOrder returns the order, or ErrNotFound.
	GetOrder(ctx context.Context, orderID string) (Order, error)
	// ListOrders returns a user's orders newest first (created_at, then
	// order_id, descending), skipping offset and returning at most limit.
	ListOrders(ctx context.Context, userID int64, offset, limit int) ([]Order, error)

	// SignIn records the user's sign-in for day unless one exists, and
	// returns the record and whether this call created it. Streak is the
	// streak of prevDay (the day before) plus one, or 1. Exactly one record
	// per user and day, however many concurrent calls.
	SignIn(ctx context.Context, userID int64, day, prevDay string, at time.Time) (rec SignIn, first bool, err error)
	// GetSignIn returns the user's record for day, or ErrNotFound.
	GetSignIn(ctx context.Context, userID int64, day string) (SignIn, error)

	// PutSMS stores a new message unless its message_id exists; created
	// reports whether this call stored it.
	PutSMS(ctx context.Context, m SMS) (created bool, err error)
	// UpdateSMS sets status, attempts, last error and rendered text of a
	// stored message; ErrNotFound if absent.
	UpdateSMS(ctx context.Context, m SMS) error
	// GetSMS returns the message, or ErrNotFound.
	GetSMS(ctx context.Context, messageID string) (SMS, error)

	// ApplyEvents adds each batch's counts to its items' counters, skipping
	// batches whose Seq was applied before, and returns how many batches
	// were new. Durable on return.
	ApplyEvents(ctx context.Context, batches []EventBatch) (applied int, err error)
	// ItemStats returns an item's counters (zero when it has none).
	ItemStats(ctx context.Context, itemID string) (Counts, error)
}
