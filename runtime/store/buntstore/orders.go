package buntstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Orders = (*Store)(nil)

// Orders (store.Orders) are three keys per order:
//
//	user shard   o:<u20>:<ts20>:<order_id>  order JSON (the row)
//	user shard   k:<u20>:<order_id>         ts20 (order id -> row key)
//	id shard     id:<order_id>              u20  (order id -> user)
//
// The order row is keyed by (user, created_at, order_id), the clustered layout
// a database would use: ListOrders is one DescendRange over the user's prefix
// that yields rows already newest first, with no per-row second lookup and no
// buntdb index (buntdb indexes are not persisted: each would be rebuilt on
// every Open and maintained on every Set). The k: row answers "does this user
// have order X" without knowing created_at, which is what makes redelivery
// idempotent even if a client resends an order with a new timestamp.
//
// Orders published straight onto NATS carry client-chosen ids, so the shard
// cannot be encoded in the id; the id: lookup, placed by hash of the order id,
// lets GetOrder find the user and keeps order ids unique across users.
//
// PutOrders writes in two rounds, each one transaction per shard touched, run
// in parallel: first it reserves the order ids in their lookup shards (an id
// held by another user is skipped), then it inserts the rows whose k: entry
// is absent. A crash between the rounds leaves a reservation without a row,
// which GetOrder reports as not found and which the redelivered message
// completes.

// orderRow is an order encoded outside any transaction, so the shard locks
// are held only for the key work.
type orderRow struct {
	id   string
	u20  string
	ts20 string
	json string
}

// tsKey orders any time by its UnixNano, sign bit flipped so that negative
// values sort first. UnixNano covers the years 1678 to 2262.
func tsKey(t time.Time) string { return pad20(uint64(t.UnixNano()) ^ 1<<63) }

func orderKey(u20, ts20, id string) string { return "o:" + u20 + ":" + ts20 + ":" + id }
func refKey(u20, id string) string         { return "k:" + u20 + ":" + id }
func lookupKey(id string) string           { return "id:" + id }

// PutOrders stores orders, skipping any whose order_id is already stored
// (for this or another user), and returns how many were new. It writes one
// transaction per shard touched in each of its two rounds (see the package
// comment), shards in parallel, through each shard's group committer; all
// are durable when it returns nil. A failed call may leave part of its
// writes (a shard's transaction is shared with other writers); the retry
// completes them, since every step is idempotent.
func (s *Store) PutOrders(ctx context.Context, orders []store.Order) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if len(orders) == 0 {
		return 0, nil
	}
	rows := make([]orderRow, len(orders))
	for i := range orders {
		o := &orders[i]
		if o.OrderID == "" {
			return 0, fmt.Errorf("buntstore: put orders: order %d has no order_id", i)
		}
		b, err := json.Marshal(o)
		if err != nil {
			return 0, fmt.Errorf("buntstore: put orders: encode %q: %w", o.OrderID, err)
		}
		rows[i] = orderRow{id: o.OrderID, u20: userKey(o.UserID), ts20: tsKey(o.CreatedAt), json: string(b)}
	}

	// Round 1: reserve each id for its user in the id's lookup shard. keep[i]
	// is set when the id is (now) this user's; each goroutine writes only the
	// indexes of its own shard.
	keep := make([]bool, len(rows))
	byID := s.group(len(rows), func(i int) int { return s.keyShard(rows[i].id) })
	err := s.parallel(byID, func(sh int, idx []int) (int, error) {
		return 0, s.commits[sh].do(ctx, func(tx *buntdb.Tx) error {
			for _, i := range idx {
				k := lookupKey(rows[i].id)
				u, err := tx.Get(k)
				switch {
				case err == nil:
					keep[i] = u == rows[i].u20
				case isNotFound(err):
					if _, _, err := tx.Set(k, rows[i].u20, nil); err != nil {
						return err
					}
					keep[i] = true
				default:
					return err
				}
			}
			return nil
		})
	}, nil)
	if err != nil {
		return 0, s.fail("put orders: reserve ids", err)
	}
	if err := ctx.Err(); err != nil {
		// Reservations without rows are completed by the retry.
		return 0, fmt.Errorf("buntstore: put orders: %w", err)
	}

	// Round 2: insert the rows not yet in the user's shard.
	byUser := s.group(len(rows), func(i int) int {
		if !keep[i] {
			return -1
		}
		o := &orders[i]
		return s.userShard(o.UserID)
	})
	var inserted int
	err = s.parallel(byUser, func(sh int, idx []int) (int, error) {
		var ins []int // the rows written, in this transaction
		hs := s.heads[sh]
		err := s.commits[sh].do(ctx, func(tx *buntdb.Tx) error {
			for _, i := range idx {
				r := &rows[i]
				ref := refKey(r.u20, r.id)
				if _, err := tx.Get(ref); err == nil {
					continue
				} else if !isNotFound(err) {
					return err
				}
				// Before the first write of the user's rows, inside the
				// transaction: a page walk that read the old rows must not
				// fill the head afterwards (see heads).
				hs.gen(orders[i].UserID).Add(1)
				if _, _, err := tx.Set(ref, r.ts20, nil); err != nil {
					return err
				}
				if _, _, err := tx.Set(orderKey(r.u20, r.ts20, r.id), r.json, nil); err != nil {
					return err
				}
				ins = append(ins, i)
			}
			return nil
		})
		if err != nil {
			// Some rows may be stored: let the next page walk rebuild.
			for _, i := range idx {
				hs.drop(orders[i].UserID)
			}
			return 0, err
		}
		// Committed: add the new rows to the heads of their users.
		byUser := make(map[int64][]headRow, len(ins))
		for _, i := range ins {
			r := &rows[i]
			byUser[orders[i].UserID] = append(byUser[orders[i].UserID], headRow{key: r.ts20 + ":" + r.id, json: r.json})
		}
		for user, add := range byUser {
			hs.merge(user, add)
		}
		return len(ins), nil
	}, &inserted)
	if err != nil {
		return 0, s.fail("put orders: insert", err)
	}
	return inserted, nil
}

// group returns, per shard, the indexes 0..n-1 that shardOf maps there
// (skipping -1), in order.
func (s *Store) group(n int, shardOf func(i int) int) [][]int {
	g := make([][]int, len(s.shards))
	for i := range n {
		if sh := shardOf(i); sh >= 0 {
			g[sh] = append(g[sh], i)
		}
	}
	return g
}

// parallel runs fn on every shard with work, in its own goroutine when more
// than one shard has work, so their fsyncs overlap. fn writes through the
// shard's group committer, so the writes of concurrent batches to one shard
// share a transaction and its fsync. The counts fn returns are summed into
// total (if non-nil); the first error is returned.
func (s *Store) parallel(groups [][]int, fn func(shard int, idx []int) (int, error), total *int) error {
	var busy []int
	for sh, idx := range groups {
		if len(idx) > 0 {
			busy = append(busy, sh)
		}
	}
	if len(busy) == 1 {
		n, err := fn(busy[0], groups[busy[0]])
		if total != nil {
			*total += n
		}
		return err
	}
	counts := make([]int, len(busy))
	errs := make([]error, len(busy))
	var wg sync.WaitGroup
	for j, sh := range busy {
		wg.Go(func() { counts[j], errs[j] = fn(sh, groups[sh]) })
	}
	wg.Wait()
	for j := range busy {
		if errs[j] != nil {
			return errs[j]
		}
		if total != nil {
			*total += counts[j]
		}
	}
	return nil
}

// GetOrder returns the order, or store.ErrNotFound.
func (s *Store) GetOrder(ctx context.Context, orderID string) (store.Order, error) {
	var o store.Order
	if err := s.check(ctx); err != nil {
		return o, err
	}
	var u20 string
	err := s.shards[s.keyShard(orderID)].View(func(tx *buntdb.Tx) (err error) {
		u20, err = tx.Get(lookupKey(orderID))
		return err
	})
	if err != nil {
		return o, s.fail(fmt.Sprintf("get order %q", orderID), err)
	}
	user, err := parseUserKey(u20)
	if err != nil {
		return o, fmt.Errorf("buntstore: get order %q: lookup %q: %w", orderID, u20, err)
	}
	var v string
	err = s.shards[s.userShard(user)].View(func(tx *buntdb.Tx) error {
		ts20, err := tx.Get(refKey(u20, orderID))
		if err != nil {
			return err // not found: reserved, row not yet written
		}
		v, err = tx.Get(orderKey(u20, ts20, orderID))
		return err
	})
	if err != nil {
		return o, s.fail(fmt.Sprintf("get order %q", orderID), err)
	}
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		return o, fmt.Errorf("buntstore: get order %q: decode: %w", orderID, err)
	}
	return o, nil
}

// ListOrders returns a user's orders newest first (created_at, then
// order_id, descending), skipping offset and returning at most limit. The
// skipped rows are walked, so the cost grows with offset.
func (s *Store) ListOrders(ctx context.Context, userID int64, offset, limit int) ([]store.Order, error) {
	vals, err := s.scanOrders(ctx, userID, offset, limit)
	if err != nil {
		return nil, err
	}
	out := make([]store.Order, len(vals))
	for i, v := range vals {
		if err := json.Unmarshal([]byte(v), &out[i]); err != nil {
			return nil, fmt.Errorf("buntstore: list orders of %d: decode: %w", userID, err)
		}
	}
	return out, nil
}

// AppendOrdersPage appends the user's newest limit orders to dst as one
// JSON array of the stored rows, copied straight out of the read
// transaction: the hot cache's page, with no intermediate allocations.
func (s *Store) AppendOrdersPage(ctx context.Context, userID int64, limit int, dst []byte) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return dst, err
	}
	sh := s.userShard(userID)
	hs := s.heads[sh]
	if page, ok := hs.page(userID, limit, dst); ok {
		return page, nil
	}
	prefix := "o:" + userKey(userID) + ":"
	last := prefix[:len(prefix)-1] + ";"
	dst = append(dst, '[')
	n := 0
	// Pages up to headRows walk one row more than headRows, to fill the
	// head and know whether it holds all the user's rows.
	var (
		head []headRow
		gen  uint64
	)
	walk := limit
	if limit <= headRows {
		walk = headRows + 1
		head = make([]headRow, 0, walk)
	}
	err := s.shards[sh].View(func(tx *buntdb.Tx) error {
		gen = hs.gen(userID).Load()
		seen := 0
		return tx.DescendRange("", last, prefix, func(k, v string) bool {
			if head != nil {
				head = append(head, headRow{key: k[len(prefix):], json: v})
			}
			seen++
			if n < limit {
				if n > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, v...)
				n++
			}
			return seen < walk
		})
	})
	if err != nil {
		return dst, s.fail(fmt.Sprintf("list orders of %d", userID), err)
	}
	if head != nil {
		all := len(head) <= headRows
		hs.fill(userID, gen, head[:min(len(head), headRows)], all)
	}
	return append(dst, ']'), nil
}

// scanOrders walks the user's rows newest first.
func (s *Store) scanOrders(ctx context.Context, userID int64, offset, limit int) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	offset = max(offset, 0)
	prefix := "o:" + userKey(userID) + ":"
	// ';' follows ':', so [prefix, prefix;) is exactly the user's rows.
	last := prefix[:len(prefix)-1] + ";"
	vals := make([]string, 0, min(limit, 256))
	err := s.shards[s.userShard(userID)].View(func(tx *buntdb.Tx) error {
		skip := offset
		return tx.DescendRange("", last, prefix, func(_, v string) bool {
			if skip > 0 {
				skip--
				return true
			}
			vals = append(vals, v)
			return len(vals) < limit
		})
	})
	if err != nil {
		return nil, s.fail(fmt.Sprintf("list orders of %d", userID), err)
	}
	return vals, nil
}
