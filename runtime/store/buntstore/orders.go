package buntstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Orders = (*Store)(nil)

// Orders (store.Orders) are two keys per order:
//
//	user shard   o:<u20>:<ts20>:<order_id>  the row (see row.go)
//	id shard     id:<order_id>              user and ts, 8 big-endian bytes each
//
// The order row is keyed by (user, created_at, order_id), the clustered layout
// a database would use: ListOrders is one DescendRange over the user's prefix
// that yields rows already newest first, with no per-row second lookup and no
// buntdb index (buntdb indexes are not persisted: each would be rebuilt on
// every Open and maintained on every Set). The row holds neither the order id
// nor the user, which its key spells.
//
// Orders published straight onto NATS carry client-chosen ids, so the shard
// cannot be encoded in the id; the id: lookup, placed by hash of the order id,
// lets GetOrder find the row and keeps order ids unique across users. It
// holds the created_at the id was first stored with, so the row key is known
// from it: that is what makes redelivery idempotent even if a client resends
// an order with a new timestamp (the row is looked for under the first one).
//
// PutOrders writes in two rounds, each one transaction per shard touched, run
// in parallel: first it reserves the order ids in their lookup shards (an id
// held by another user is skipped), then it inserts the rows not yet in the
// user's shard. A crash between the rounds leaves a reservation without a
// row, which GetOrder reports as not found and which the redelivered message
// completes, under the reservation's timestamp.
//
// Stores written before the compact layout had a third key per order,
//
//	user shard   k:<u20>:<order_id>         ts20 (order id -> row key)
//
// and an id: lookup of just the u20 (20 digits): such an order is read
// through its k: key, and a reservation of that kind without a row is
// completed the old way (k: key and row), so old directories keep working
// unchanged. Old rows are JSON, which every reader accepts.

// orderRow is an order encoded outside any transaction, so the shard locks
// are held only for the key work.
type orderRow struct {
	id  string
	u20 string
	ts  uint64 // tsNum of the order's created_at
	row []byte // the encoded row
	// Round 1 sets the reservation: its timestamp, and whether the lookup
	// is of the old layout (the k: key then tells whether the row exists).
	resTS uint64
	old   bool
}

// tsNum orders any time by its UnixNano, sign bit flipped so that negative
// values sort first. UnixNano covers the years 1678 to 2262.
func tsNum(t time.Time) uint64 { return uint64(t.UnixNano()) ^ 1<<63 }

func tsKey(t time.Time) string { return pad20(tsNum(t)) }

// tsTime is the time of a tsNum.
func tsTime(ts uint64) time.Time { return time.Unix(0, int64(ts^1<<63)) }

func orderKey(u20, ts20, id string) string { return "o:" + u20 + ":" + ts20 + ":" + id }
func refKey(u20, id string) string         { return "k:" + u20 + ":" + id }
func lookupKey(id string) string           { return idPrefix + id }

// rowKeyIDAt is where the order id starts in an o: key.
const rowKeyIDAt = len("o:") + 20 + 1 + 20 + 1

// lookupLen is the length of an id: value of the compact layout; one of the
// old layout is 20 digits.
const lookupLen = 16

// appendLookup appends the id: entry of the compact layout, key and value.
func appendLookup(dst []byte, id string, user int64, ts uint64) []byte {
	dst = append(dst, "id:"...)
	dst = append(dst, id...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(user))
	return binary.BigEndian.AppendUint64(dst, ts)
}

// parseLookup reads an id: value: the user's u20 and the row's timestamp,
// or old when it is of the old layout (no timestamp).
func parseLookup(v string) (u20 string, ts uint64, old bool, err error) {
	switch len(v) {
	case lookupLen:
		return pad20(binary.BigEndian.Uint64([]byte(v[:8]))), binary.BigEndian.Uint64([]byte(v[8:])), false, nil
	case 20:
		if _, err := parseUserKey(v); err != nil {
			return "", 0, false, err
		}
		return v, 0, true, nil
	}
	return "", 0, false, fmt.Errorf("id lookup of %d bytes: %w", len(v), errRow)
}

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
	// One buffer for every row; each row is a full slice of it, so a later
	// append that moves the buffer leaves the earlier rows where they are.
	buf := make([]byte, 0, 96*len(orders))
	for i := range orders {
		o := &orders[i]
		if o.OrderID == "" {
			return 0, fmt.Errorf("buntstore: put orders: order %d has no order_id", i)
		}
		n0 := len(buf)
		var err error
		if buf, err = appendRow(buf, o); err != nil {
			return 0, fmt.Errorf("buntstore: put orders: encode %q: %w", o.OrderID, err)
		}
		ts := tsNum(o.CreatedAt)
		rows[i] = orderRow{id: o.OrderID, u20: userKey(o.UserID), ts: ts, row: buf[n0:len(buf):len(buf)]}
	}
	if s.peb != nil {
		return s.putOrdersPebble(ctx, orders, rows)
	}

	// Round 1: reserve each id for its user in the id's lookup shard. keep[i]
	// is set when the id is (now) this user's; each goroutine writes only the
	// indexes of its own shard.
	keep := make([]bool, len(rows))
	byID := s.group(len(rows), func(i int) int { return s.keyShard(rows[i].id) })
	err := s.parallel(byID, func(sh int, idx []int) (int, error) {
		// The id: entries, key and value in one string each, built before
		// the transaction.
		entries := make([]string, len(idx))
		var scratch []byte
		for j, i := range idx {
			scratch = appendLookup(scratch[:0], rows[i].id, orders[i].UserID, rows[i].ts)
			entries[j] = string(scratch)
		}
		return 0, s.commits[sh].do(ctx, func(tx *buntdb.Tx) error {
			for j, i := range idx {
				r := &rows[i]
				e := entries[j]
				k := e[:len(e)-lookupLen]
				v, err := tx.Get(k)
				switch {
				case err == nil:
					u20, ts, old, err := parseLookup(v)
					if err != nil {
						return fmt.Errorf("order %q: %w", r.id, err)
					}
					keep[i], r.resTS, r.old = u20 == r.u20, ts, old
				case isNotFound(err):
					if _, _, err := tx.Set(k, e[len(k):], nil); err != nil {
						return err
					}
					keep[i], r.resTS, r.old = true, r.ts, false
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
		// The rows, key and value in one string each, built before the
		// transaction: keys[j] is the key, entries[j][len(keys[j]):] the row.
		keys, entries, err := rowEntries(orders, rows, idx)
		if err != nil {
			return 0, err
		}
		var ins []int // the rows written, in this transaction (indexes into idx)
		hs := s.heads[sh]
		err = s.commits[sh].do(ctx, func(tx *buntdb.Tx) error {
			for j, i := range idx {
				r := &rows[i]
				key := keys[j]
				var ref string
				if r.old {
					ref = refKey(r.u20, r.id)
				}
				exists := key
				if ref != "" {
					exists = ref
				}
				if _, err := tx.Get(exists); err == nil {
					continue
				} else if !isNotFound(err) {
					return err
				}
				// Before the first write of the user's rows, inside the
				// transaction: a page walk that read the old rows must not
				// fill the head afterwards (see heads).
				hs.gen(orders[i].UserID).Add(1)
				if ref != "" {
					if _, _, err := tx.Set(ref, key[len("o:")+21:rowKeyIDAt-1], nil); err != nil {
						return err
					}
				}
				if _, _, err := tx.Set(key, entries[j][len(key):], nil); err != nil {
					return err
				}
				ins = append(ins, j)
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
		for _, j := range ins {
			user := orders[idx[j]].UserID
			key := keys[j]
			byUser[user] = append(byUser[user], headRow{key: key[len("o:")+21:], row: entries[j][len(key):]})
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

// rowEntries builds, for the rows idx of a shard, each row's key and one
// string of key and row. A row goes under its reservation's timestamp: a
// retry that completes a reservation of an order resent with another
// created_at is re-encoded with the reserved one, so key and row agree. An
// old-layout reservation keeps the order's own timestamp (the k: key will
// hold it).
func rowEntries(orders []store.Order, rows []orderRow, idx []int) (keys, entries []string, err error) {
	keys, entries = make([]string, len(idx)), make([]string, len(idx))
	var scratch []byte
	for j, i := range idx {
		r := &rows[i]
		ts, row := r.ts, r.row
		if !r.old && r.resTS != r.ts {
			// A rowV1KeyTime row would take the key's time anyway; the
			// re-encoding keeps the rule simple.
			o := orders[i]
			o.CreatedAt = tsTime(r.resTS).In(o.CreatedAt.Location())
			if row, err = appendRow(nil, &o); err != nil {
				return nil, nil, fmt.Errorf("encode %q: %w", o.OrderID, err)
			}
			ts = r.resTS
		}
		var kl int
		scratch, kl = appendRowEntry(scratch[:0], r.u20, ts, r.id, row)
		e := string(scratch)
		keys[j], entries[j] = e[:kl], e
	}
	return keys, entries, nil
}

// appendRowEntry appends a row's key (o:<u20>:<ts20>:<id>) and then the
// row, and returns where the key ends.
func appendRowEntry(dst []byte, u20 string, ts uint64, id string, row []byte) ([]byte, int) {
	dst = append(dst, "o:"...)
	dst = append(dst, u20...)
	dst = append(dst, ':')
	dst = appendPad20(dst, ts)
	dst = append(dst, ':')
	dst = append(dst, id...)
	kl := len(dst)
	return append(dst, row...), kl
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
	if s.peb != nil {
		return s.getOrderPebble(orderID)
	}
	var lookup string
	err := s.shards[s.keyShard(orderID)].View(func(tx *buntdb.Tx) (err error) {
		lookup, err = tx.Get(lookupKey(orderID))
		return err
	})
	if err != nil {
		return o, s.fail(fmt.Sprintf("get order %q", orderID), err)
	}
	user, u20, ts, old, err := orderAt(orderID, lookup)
	if err != nil {
		return o, err
	}
	var hr headRow
	err = s.shards[s.userShard(user)].View(func(tx *buntdb.Tx) error {
		ts20 := pad20(ts)
		if old {
			var err error
			if ts20, err = tx.Get(refKey(u20, orderID)); err != nil {
				return err // not found: reserved, row not yet written
			}
		}
		key := orderKey(u20, ts20, orderID)
		v, err := tx.Get(key)
		hr = headRow{key: key[len("o:")+21:], row: v}
		return err // not found: reserved, row not yet written
	})
	if err != nil {
		return o, s.fail(fmt.Sprintf("get order %q", orderID), err)
	}
	if o, err = decodeRow(user, hr); err != nil {
		return o, fmt.Errorf("buntstore: get order %q: decode: %w", orderID, err)
	}
	return o, nil
}

// orderAt reads the id: lookup of orderID: the order's user (and its u20)
// and the timestamp of its row, or old for a lookup of the old layout.
func orderAt(orderID, lookup string) (user int64, u20 string, ts uint64, old bool, err error) {
	if u20, ts, old, err = parseLookup(lookup); err != nil {
		return 0, "", 0, false, fmt.Errorf("buntstore: get order %q: %w", orderID, err)
	}
	if user, err = parseUserKey(u20); err != nil {
		return 0, "", 0, false, fmt.Errorf("buntstore: get order %q: lookup %q: %w", orderID, u20, err)
	}
	return user, u20, ts, old, nil
}

// ListOrders returns a user's orders newest first (created_at, then
// order_id, descending), skipping offset and returning at most limit. The
// skipped rows are walked, so the cost grows with offset.
func (s *Store) ListOrders(ctx context.Context, userID int64, offset, limit int) ([]store.Order, error) {
	rows, err := s.scanOrders(ctx, userID, offset, limit)
	if err != nil {
		return nil, err
	}
	out := make([]store.Order, len(rows))
	for i, r := range rows {
		if out[i], err = decodeRow(userID, r); err != nil {
			return nil, fmt.Errorf("buntstore: list orders of %d: decode %q: %w", userID, r.id(), err)
		}
	}
	return out, nil
}

// AppendOrdersPage appends the user's newest limit orders to dst as one
// JSON array, the JSON json.Marshal gives for them, written straight from
// the rows of the read transaction (or of the user's head): the hot cache's
// page, with no intermediate allocations.
func (s *Store) AppendOrdersPage(ctx context.Context, userID int64, limit int, dst []byte) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return dst, err
	}
	sh := s.userShard(userID)
	hs := s.heads[sh]
	if page, ok := hs.page(userID, limit, dst); ok {
		return page, nil
	}
	n0 := len(dst)
	dst = append(dst, '[')
	n := 0
	// Pages up to headRows walk one row more than headRows, to fill the
	// head and know whether it holds all the user's rows.
	var (
		head []headRow
		gen  uint64
		derr error
	)
	walk := limit
	if limit <= headRows {
		walk = headRows + 1
		head = make([]headRow, 0, walk)
	}
	seen := 0
	err := s.descend(userID, "", func() { gen = hs.gen(userID).Load() }, func(r headRow) bool {
		if head != nil {
			head = append(head, r)
		}
		seen++
		if n < limit {
			if n > 0 {
				dst = append(dst, ',')
			}
			if dst, derr = appendOrderJSON(dst, userID, r); derr != nil {
				derr = fmt.Errorf("decode %q: %w", r.id(), derr)
				return false
			}
			n++
		}
		return seen < walk
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return dst[:n0], s.fail(fmt.Sprintf("list orders of %d", userID), err)
	}
	if head != nil {
		all := len(head) <= headRows
		hs.fill(userID, gen, head[:min(len(head), headRows)], all)
	}
	return append(dst, ']'), nil
}

// scanOrders walks the user's rows newest first.
func (s *Store) scanOrders(ctx context.Context, userID int64, offset, limit int) ([]headRow, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	offset = max(offset, 0)
	rows := make([]headRow, 0, min(limit, 256))
	skip := offset
	err := s.descend(userID, "", func() {}, func(r headRow) bool {
		if skip > 0 {
			skip--
			return true
		}
		rows = append(rows, r)
		return len(rows) < limit
	})
	if err != nil {
		return nil, s.fail(fmt.Sprintf("list orders of %d", userID), err)
	}
	return rows, nil
}

// descend walks the user's rows newest first, calling fn with each until
// it returns false; start runs inside the read, before any row is read.
// With below set (an o: key of the user's), the walk starts at the first
// row after it, without reading the rows before.
func (s *Store) descend(userID int64, below string, start func(), fn func(r headRow) bool) error {
	if s.peb != nil {
		return s.descendPebble(userID, below, start, fn)
	}
	prefix := "o:" + userKey(userID) + ":"
	// ';' follows ':', so [prefix, prefix;) is exactly the user's rows.
	from := prefix[:len(prefix)-1] + ";"
	if below != "" {
		from = below
	}
	return s.shards[s.userShard(userID)].View(func(tx *buntdb.Tx) error {
		if below != "" {
			// An id: lookup may be a reservation whose row was never
			// written (a crash between PutOrders' rounds): no order to
			// page after.
			if _, err := tx.Get(below); err != nil {
				return err
			}
		}
		start()
		return tx.DescendRange("", from, prefix, func(k, v string) bool {
			if k == below {
				return true // the range includes its upper end
			}
			return fn(headRow{key: k[len(prefix):], row: v})
		})
	})
}

// ListOrdersAfter returns at most limit of the user's orders that follow
// the order afterID, newest first: the walk starts at afterID's row, so
// the cost does not grow with the depth of the page. store.ErrNotFound when
// afterID is not an order of the user.
func (s *Store) ListOrdersAfter(ctx context.Context, userID int64, afterID string, limit int) ([]store.Order, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	op := fmt.Sprintf("list orders of %d after %q", userID, afterID)
	user, key, err := s.locate(afterID)
	if err == nil && user != userID {
		err = fmt.Errorf("an order of another user: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(op, err)
	}
	out := make([]store.Order, 0, min(max(limit, 0), 256))
	if limit <= 0 {
		return out, nil
	}
	var derr error
	err = s.descend(userID, key, func() {}, func(r headRow) bool {
		var o store.Order
		if o, derr = decodeRow(userID, r); derr != nil {
			derr = fmt.Errorf("buntstore: %s: decode %q: %w", op, r.id(), derr)
			return false
		}
		out = append(out, o)
		return len(out) < limit
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	if derr != nil {
		return nil, derr
	}
	return out, nil
}

// locate finds the row of orderID: its user and its o: key, read from the
// id: lookup (and, for a lookup of the old layout, from the user's k: ref).
func (s *Store) locate(orderID string) (user int64, key string, err error) {
	var lookup string
	if s.peb != nil {
		// The engine writes an id's lookup and its row in one batch.
		err := func() error {
			if err := s.peb.enter(); err != nil {
				return err
			}
			defer s.peb.life.RUnlock()
			v, found, err := s.peb.get([]byte(lookupKey(orderID)))
			if err == nil && !found {
				err = store.ErrNotFound
			}
			lookup = string(v)
			return err
		}()
		if err != nil {
			return 0, "", err
		}
	} else {
		err := s.shards[s.keyShard(orderID)].View(func(tx *buntdb.Tx) (err error) {
			lookup, err = tx.Get(lookupKey(orderID))
			return err
		})
		if err != nil {
			return 0, "", err
		}
	}
	user, u20, ts, old, err := orderAt(orderID, lookup)
	if err != nil {
		return 0, "", err
	}
	ts20 := pad20(ts)
	if old {
		if s.peb != nil {
			return 0, "", fmt.Errorf("id lookup of the old layout: %w", errRow)
		}
		err = s.shards[s.userShard(user)].View(func(tx *buntdb.Tx) (err error) {
			ts20, err = tx.Get(refKey(u20, orderID))
			return err
		})
		if err != nil {
			return 0, "", err
		}
	}
	return user, orderKey(u20, ts20, orderID), nil
}
