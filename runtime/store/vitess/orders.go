package vitess

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Orders = (*Store)(nil)

// The order domain's tables: the orders on their users' shards, and the
// order_id -> user_id lookup that GetOrder reads first.
//
// order_lookup maps an order_id to its user: GetOrder reads it, then the
// user's shard. It also makes an order_id unique across users: PutOrders
// first claims every id with INSERT IGNORE into order_lookup, and only the
// orders whose id is now held by their own user are inserted. The store
// manages the table itself instead of declaring it a consistent_lookup_unique
// vindex, because with INSERT IGNORE vtgate v0.24 verifies each row of the
// batch with a separate query (a 500-order batch took ~180 ms, ~2,800
// orders/s) and writes the lookup rows sorted by keyspace id, which lets
// the wrong order win an id claimed twice in one batch. Managed here, a
// batch costs two or three statements whatever its size.
var _ = addTables("orders",
	table{
		name: "orders", column: "user_id", vindex: "hash",
		doc: `
Orders live on the shard of their user (hash vindex on user_id): one
user's orders are always on one shard, so "newest first per user" is a
single-shard index scan of user_newest. The primary key (user_id,
order_id), not created_at, is what makes a resend with a new timestamp a
duplicate.
`,
		ddl: `
CREATE TABLE IF NOT EXISTS orders (
  user_id     BIGINT         NOT NULL,
  order_id    VARBINARY(64)  NOT NULL,
  items       MEDIUMBLOB     NOT NULL, -- JSON array of {sku, qty, price_cents}
  total_cents BIGINT         NOT NULL,
  currency    VARBINARY(16)  NOT NULL,
  status      VARBINARY(64)  NOT NULL,
  created_at  DATETIME(6)    NOT NULL,
  PRIMARY KEY (user_id, order_id),
  KEY user_newest (user_id, created_at, order_id)
) ENGINE=InnoDB`,
	},
	table{
		name: "order_lookup", column: "order_id", vindex: "xxhash",
		doc: `
order_id -> user_id, written by the store before the orders rows.
GET /v1/orders/{order_id} does not know the user, and orders published on
NATS carry client-chosen ids, so the shard cannot be encoded in the id.
Sharded by xxhash of order_id: the key is a string and every access is by
that string. Its primary key makes an order_id unique across users: the
first user to claim an id keeps it, a later claim by another user is
skipped. It is deliberately not a vtgate-managed consistent_lookup_unique
vindex: with INSERT IGNORE, vtgate v0.24 verifies every row of a batch
with its own query (a 500-order batch took ~180 ms) and inserts the
lookup rows sorted by keyspace id, so inside one batch the winner of a
contested id would not be the first order (see runtime/store/vitess).
`,
		ddl: `
CREATE TABLE IF NOT EXISTS order_lookup (
  order_id VARBINARY(64) NOT NULL,
  user_id  BIGINT        NOT NULL,
  PRIMARY KEY (order_id)
) ENGINE=InnoDB`,
	},
)

const orderCols = "order_id, user_id, items, total_cents, currency, status, created_at"

// orderRow is an order with its items encoded.
type orderRow struct {
	o     *store.Order
	items string
}

// PutOrders stores orders, skipping any whose order_id is already stored
// (for this or another user, or earlier in the batch), and returns how many
// were new. It claims the ids in order_lookup, reads back the claims it
// did not win outright, and inserts the orders whose id is held by their
// own user: two or three multi-row statements per maxRows orders, each
// spread over the shards by vtgate. See the package comment for a failure
// between or inside them.
func (s *Store) PutOrders(ctx context.Context, orders []store.Order) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	rows := make([]orderRow, 0, len(orders))
	seen := make(map[string]struct{}, len(orders))
	for i := range orders {
		o := &orders[i]
		if o.OrderID == "" {
			return 0, fmt.Errorf("vitess: put orders: order %d has no order_id", i)
		}
		if _, dup := seen[o.OrderID]; dup {
			continue // the first in the batch wins, as across batches
		}
		seen[o.OrderID] = struct{}{}
		items := o.Items
		if items == nil {
			items = []store.Item{}
		}
		b, err := json.Marshal(items)
		if err != nil {
			return 0, fmt.Errorf("vitess: put orders: encode %q: %w", o.OrderID, err)
		}
		rows = append(rows, orderRow{o: o, items: string(b)})
	}
	if len(rows) == 0 {
		return 0, nil
	}

	claimed, err := s.claimOrderIDs(ctx, rows)
	if err != nil {
		return 0, s.fail("put orders: claim ids", err)
	}
	if claimed < len(rows) {
		// Some ids were claimed before: by this user in an earlier attempt
		// (keep them, the insert skips what is stored) or by another user.
		if rows, err = s.ownRows(ctx, rows); err != nil {
			return 0, s.fail("put orders: read claims", err)
		}
	}
	inserted := 0
	err = chunks(len(rows), func(lo, hi int) error {
		args := make([]any, 0, 7*(hi-lo))
		for _, r := range rows[lo:hi] {
			o := r.o
			args = append(args, o.OrderID, o.UserID, r.items, o.TotalCents, o.Currency, o.Status, o.CreatedAt)
		}
		n, err := s.exec(ctx, valuesSQL(insertIgnore("orders", orderCols), 7, hi-lo), args...)
		inserted += int(n)
		return err
	})
	if err != nil {
		return 0, s.fail("put orders: insert", err)
	}
	return inserted, nil
}

// claimOrderIDs inserts the lookup rows missing for rows and returns how
// many it inserted.
func (s *Store) claimOrderIDs(ctx context.Context, rows []orderRow) (int, error) {
	claimed := 0
	err := chunks(len(rows), func(lo, hi int) error {
		args := make([]any, 0, 2*(hi-lo))
		for _, r := range rows[lo:hi] {
			args = append(args, r.o.OrderID, r.o.UserID)
		}
		n, err := s.exec(ctx, valuesSQL(insertIgnore("order_lookup", "order_id, user_id"), 2, hi-lo), args...)
		claimed += int(n)
		return err
	})
	return claimed, err
}

// ownRows returns the rows whose order_id order_lookup gives to their user.
func (s *Store) ownRows(ctx context.Context, rows []orderRow) ([]orderRow, error) {
	owner := make(map[string]int64, len(rows))
	err := chunks(len(rows), func(lo, hi int) error {
		args := make([]any, 0, hi-lo)
		for _, r := range rows[lo:hi] {
			args = append(args, r.o.OrderID)
		}
		res, err := s.db.QueryContext(ctx, inSQL("SELECT order_id, user_id FROM order_lookup WHERE order_id", hi-lo), args...)
		if err != nil {
			return err
		}
		defer res.Close()
		for res.Next() {
			var id string
			var user int64
			if err := res.Scan(&id, &user); err != nil {
				return err
			}
			owner[id] = user
		}
		return res.Err()
	})
	if err != nil {
		return nil, err
	}
	own := rows[:0:0]
	for _, r := range rows {
		if u, ok := owner[r.o.OrderID]; ok && u == r.o.UserID {
			own = append(own, r)
		}
	}
	return own, nil
}

// GetOrder returns the order, or store.ErrNotFound. It reads the id's
// lookup row, then the order on its user's shard.
func (s *Store) GetOrder(ctx context.Context, orderID string) (store.Order, error) {
	if err := s.check(ctx); err != nil {
		return store.Order{}, err
	}
	op := fmt.Sprintf("get order %q", orderID)
	var user int64
	err := s.db.QueryRowContext(ctx, "SELECT user_id FROM order_lookup WHERE order_id = ?", orderID).Scan(&user)
	if err != nil {
		return store.Order{}, s.fail(op, err)
	}
	// No row: claimed, not yet (or never) stored; see the package comment.
	row := s.db.QueryRowContext(ctx, "SELECT "+orderCols+" FROM orders WHERE user_id = ? AND order_id = ?", user, orderID)
	o, err := scanOrder(row)
	if err != nil {
		return store.Order{}, s.fail(op, err)
	}
	return o, nil
}

// ListOrders returns a user's orders newest first (created_at, then
// order_id, descending), skipping offset and returning at most limit: one
// scan of the user_newest index on the user's shard, whose cost grows with
// offset.
func (s *Store) ListOrders(ctx context.Context, userID int64, offset, limit int) ([]store.Order, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []store.Order{}, nil
	}
	op := fmt.Sprintf("list orders of %d", userID)
	rows, err := s.db.QueryContext(ctx, "SELECT "+orderCols+" FROM orders WHERE user_id = ?"+
		" ORDER BY created_at DESC, order_id DESC LIMIT ?, ?", userID, max(offset, 0), limit)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return s.scanOrders(rows, limit, op)
}

// ListOrdersAfter returns at most limit of the user's orders that follow
// the order afterID, newest first: it reads afterID's created_at, then
// scans the user_newest index from there, so the cost does not grow with
// the depth of the page. store.ErrNotFound when afterID is not an order of
// the user.
func (s *Store) ListOrdersAfter(ctx context.Context, userID int64, afterID string, limit int) ([]store.Order, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	op := fmt.Sprintf("list orders of %d after %q", userID, afterID)
	var at time.Time
	err := s.db.QueryRowContext(ctx, "SELECT created_at FROM orders WHERE user_id = ? AND order_id = ?", userID, afterID).Scan(&at)
	if err != nil {
		return nil, s.fail(op, err)
	}
	if limit <= 0 {
		return []store.Order{}, nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+orderCols+" FROM orders WHERE user_id = ?"+
		" AND (created_at < ? OR (created_at = ? AND order_id < ?))"+
		" ORDER BY created_at DESC, order_id DESC LIMIT ?", userID, at, at, afterID, limit)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return s.scanOrders(rows, limit, op)
}

// scanOrders reads the orderCols of up to limit rows and closes rows.
func (s *Store) scanOrders(rows *sql.Rows, limit int, op string) ([]store.Order, error) {
	defer rows.Close()
	out := make([]store.Order, 0, min(limit, 256))
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, s.fail(op, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// scanOrder reads the orderCols of one row.
func scanOrder(row interface{ Scan(...any) error }) (store.Order, error) {
	var o store.Order
	var items string
	var at time.Time
	if err := row.Scan(&o.OrderID, &o.UserID, &items, &o.TotalCents, &o.Currency, &o.Status, &at); err != nil {
		return o, err
	}
	if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
		return o, fmt.Errorf("decode items: %w", err)
	}
	o.CreatedAt = at
	return o, nil
}
