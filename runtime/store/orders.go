package store

import (
	"context"
	"time"
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

// Orders is the order domain: orders keyed by order_id, listed per user.
type Orders interface {
	// PutOrders stores orders, skipping any whose order_id is already
	// stored, and returns how many were new. Durable on return.
	PutOrders(ctx context.Context, orders []Order) (inserted int, err error)
	// GetOrder returns the order, or ErrNotFound.
	GetOrder(ctx context.Context, orderID string) (Order, error)
	// ListOrders returns a user's orders newest first (created_at, then
	// order_id, descending), skipping offset and returning at most limit.
	ListOrders(ctx context.Context, userID int64, offset, limit int) ([]Order, error)
	// ListOrdersAfter returns at most limit of the user's orders that
	// follow the order afterID in ListOrders' order: keyset paging, whose
	// cost does not grow with the depth of the page. ErrNotFound when
	// afterID is not an order of the user.
	ListOrdersAfter(ctx context.Context, userID int64, afterID string, limit int) ([]Order, error)
}
