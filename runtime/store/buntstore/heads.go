package buntstore

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// heads keeps, per shard, the newest rows of recently paged users in
// memory, so that AppendOrdersPage (order-list's first page: this store
// serves it itself, see functions/orders hotCache.local) does not walk the
// B-tree for a page it has just seen. When order-persist still refreshed a
// KV page after every batch, that walk was 8% of the CPU of persisting
// orders in the orders-nats profile.
//
// The store is the only writer of its files, so it can keep the heads
// exact:
//   - a page walk fills a head only if no write touched the user (their
//     stripe's generation) between the walk and the fill;
//   - every write transaction of a user's rows bumps that generation inside
//     the transaction, and once committed merges its rows into the head (a
//     merge is a union by key, so applying it twice or late is harmless);
//   - a write that failed drops the heads it may have touched.
//
// A head holds rows as stored (the key and row strings are the ones buntdb
// keeps, not copies), newest first; a page is written from them as JSON
// (appendOrderJSON).
type heads struct {
	gens [headStripes]atomic.Uint64

	mu sync.Mutex
	m  map[int64]*userHead
}

const (
	// headRows is how many of a user's newest rows a head keeps: pages of
	// up to that many are served from it.
	headRows = 20
	// maxHeads bounds the heads of one shard; past it a head is evicted.
	maxHeads = 8192
	// headStripes is the number of generation counters of one shard.
	headStripes = 1024
)

// headRow is a row of a head: its key after "o:<user>:" (ts20:order_id,
// whose order is the B-tree's) and the row as stored (row.go).
type headRow struct {
	key string
	row string
}

// id is the row's order id.
func (r headRow) id() string { return r.key[21:] }

// ts20 is the row's timestamp (tsKey).
func (r headRow) ts20() string { return r.key[:20] }

type userHead struct {
	rows []headRow // newest first, at most headRows
	// all: rows are all the user's rows (fewer than headRows).
	all bool
}

func newHeads() *heads { return &heads{m: make(map[int64]*userHead)} }

func (h *heads) gen(user int64) *atomic.Uint64 {
	return &h.gens[uint64(user)%headStripes]
}

// page appends the user's newest limit rows as a JSON array to dst, if the
// head has them (and they decode: a bad row is left to the walk to report).
func (h *heads) page(user int64, limit int, dst []byte) ([]byte, bool) {
	h.mu.Lock()
	hd := h.m[user]
	if hd == nil || limit > headRows || limit > len(hd.rows) && !hd.all {
		h.mu.Unlock()
		return dst, false
	}
	// Encode unlocked, from a copy of the row headers: merge shifts the
	// head's rows in place.
	var buf [headRows]headRow
	rows := buf[:copy(buf[:], hd.rows[:min(limit, len(hd.rows))])]
	h.mu.Unlock()
	n0 := len(dst)
	dst = append(dst, '[')
	for i, r := range rows {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendOrderJSON(dst, user, r); err != nil {
			return dst[:n0], false
		}
	}
	return append(dst, ']'), true
}

// fill records the rows a page walk found (newest first, up to headRows;
// all when the user has no more), unless a write touched the user since
// the walk read gen. The head keeps rows: the walk hands over its slice.
func (h *heads) fill(user int64, gen uint64, rows []headRow, all bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen(user).Load() != gen {
		return
	}
	h.put(user, &userHead{rows: rows, all: all})
}

// put stores hd, evicting some head when full; h.mu is held.
func (h *heads) put(user int64, hd *userHead) {
	if _, ok := h.m[user]; !ok && len(h.m) >= maxHeads {
		for u := range h.m { // an arbitrary one
			delete(h.m, u)
			break
		}
	}
	h.m[user] = hd
}

// merge adds committed rows of user to their head, if there is one, in
// place: a batch adds a row or two per user, mostly at the front.
func (h *heads) merge(user int64, rows []headRow) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hd := h.m[user]
	if hd == nil {
		return
	}
	for _, r := range rows {
		i, found := slices.BinarySearchFunc(hd.rows, r, newerFirst)
		if found || i == headRows || i == len(hd.rows) && !hd.all {
			continue // there already, or older than every row kept
		}
		hd.rows = slices.Insert(hd.rows, i, r)
		if len(hd.rows) > headRows {
			hd.rows = hd.rows[:headRows]
			hd.all = false
		}
	}
}

// newerFirst orders rows as a head keeps them (cmp of an element e and
// the target t for slices.BinarySearchFunc).
func newerFirst(e, t headRow) int { return strings.Compare(t.key, e.key) }

// holds reports whether the user has a head, which merge would add to.
func (h *heads) holds(user int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[user] != nil
}

// drop forgets the user's head.
func (h *heads) drop(user int64) {
	h.mu.Lock()
	delete(h.m, user)
	h.mu.Unlock()
}
