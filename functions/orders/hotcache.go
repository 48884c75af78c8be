package orders

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// hotCache is a user's first page (the newest HotPageSize orders, a JSON
// array of stored orders) in ORDERS_HOT under "u.<user_id>", for a network
// store; a local store (the embedded one) serves first pages itself and
// ORDERS_HOT is not used (see local).
//
// Writers (order-persist, after storing) and readers (order-list, on a
// miss) can race: a writer that read the store before another writer's
// orders landed must not overwrite the newer page. So every write is a
// compare-and-set: a writer reads the key's revision, THEN lists the store,
// then updates on that revision (or creates when absent), and starts over
// on a conflict. Whoever writes last listed the store after every write
// that came before, so the page ends up current. Readers only create a
// missing key or replace a stale marker, never overwrite a page.
//
// A writer that cannot refresh a page writes staleMarker: the next reader
// builds that page from the store.
//
// The fast path (with js set) does the same compare-and-set in
// one pipelined round trip per batch: the expected revision of each key is
// the one this process last wrote (revs), known before the store is read;
// every page is published asynchronously with
// Nats-Expected-Last-Subject-Sequence, and only the keys whose revision
// turned out stale (another writer, a reader's fill, an expiry) take the
// slow path above.
type hotCache struct {
	kv      jetstream.KeyValue
	store   store.Orders
	workers int

	js     jetstream.JetStream // nil: no fast path
	bucket string
	revs   revCache

	rounds refreshRounds
}

// refreshRounds is group commit for refreshes: every replica of
// order-persist in this process hands its users to one refresher, which
// runs a round at a time over the union of what is waiting. Users shared
// by concurrent batches are refreshed once, and replicas of one process
// never race each other's compare-and-set. A batch waits for a round that
// started after it asked, so the round's store reads see its orders.
//
// Rounds start at least interval apart: under load, the batches stored
// meanwhile share one round and a user who ordered several times in it
// gets one page write; when idle, a round starts at once.
type refreshRounds struct {
	interval time.Duration

	mu        sync.Mutex
	pending   map[int64]*newOrders
	waiters   []chan roundResult
	running   bool
	lastStart time.Time
}

type roundResult struct {
	failed int
	err    error
}

// newOrders are the orders a round's batches stored for one user; full
// means one of them could not say (a redelivery, an order_id another user
// holds), and the page is read from the store.
type newOrders struct {
	orders []store.Order
	full   bool
}

// local reports whether the store is the embedded one (a pageAppender),
// which only this process reads: a runtime host on the embedded store
// refuses to start next to a live host on other data (README, "Why
// Vitess"), so every order-list and order-persist of that store runs
// here. Its newest rows of recently read users are in memory (the store's
// page heads), so a first page is read from it directly and ORDERS_HOT is
// neither written nor read: a page write per user and round would only
// copy what the store already holds. Measured (orders-nats, 2 cores): the
// refresh rounds were 12% of the process's CPU, and the pages about a
// fifth of what orders-http allocated.
func (h *hotCache) local() bool {
	_, ok := h.store.(pageAppender)
	return ok
}

// refreshGrouped refreshes users in the next round and waits for it.
// stored, when not nil, holds by user the orders the batch has just
// stored, every one of them new and the user's own: a store that reads
// pages over the network then merges them into the cached page instead.
func (h *hotCache) refreshGrouped(ctx context.Context, users []int64, stored map[int64][]store.Order) (int, error) {
	ch := make(chan roundResult, 1)
	r := &h.rounds
	r.mu.Lock()
	if r.pending == nil {
		r.pending = make(map[int64]*newOrders, len(users))
	}
	for _, u := range users {
		n := r.pending[u]
		if n == nil {
			n = &newOrders{}
			r.pending[u] = n
		}
		if stored == nil {
			n.full, n.orders = true, nil
		} else if !n.full {
			n.orders = append(n.orders, stored[u]...)
		}
	}
	r.waiters = append(r.waiters, ch)
	if !r.running {
		r.running = true
		go h.runRounds()
	}
	r.mu.Unlock()
	select {
	case res := <-ch:
		return res.failed, res.err
	case <-ctx.Done():
		return len(users), ctx.Err()
	}
}

// roundTimeout bounds one refresh round.
const roundTimeout = 10 * time.Second

func (h *hotCache) runRounds() {
	r := &h.rounds
	for {
		r.mu.Lock()
		if wait := r.interval - time.Since(r.lastStart); wait > 0 && len(r.waiters) > 0 {
			r.mu.Unlock()
			time.Sleep(wait) // let more batches join this round
			r.mu.Lock()
		}
		if len(r.waiters) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.lastStart = time.Now()
		users := make([]int64, 0, len(r.pending))
		adds := make(map[int64][]store.Order, len(r.pending))
		for u, n := range r.pending {
			users = append(users, u)
			if !n.full {
				adds[u] = n.orders
			}
		}
		waiters := r.waiters
		r.pending, r.waiters = nil, nil
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
		failed, err := h.refreshMerging(ctx, users, adds)
		cancel()
		for _, w := range waiters {
			w <- roundResult{failed, err}
		}
	}
}

// pageAppender is implemented by stores that can append a user's newest
// orders as stored JSON (buntstore): pages are then built without decoding
// and re-encoding.
type pageAppender interface {
	AppendOrdersPage(ctx context.Context, userID int64, limit int, dst []byte) ([]byte, error)
}

// revCache remembers the ORDERS_HOT revision this process last wrote per
// user. A wrong entry only costs a conflict and the slow path.
type revCache struct {
	mu sync.Mutex
	m  map[int64]uint64
}

// maxRefreshInFlight bounds the unacknowledged page writes of a round.
const maxRefreshInFlight = 64

// maxRevs bounds revCache; past it the cache starts over.
const maxRevs = 200_000

func (c *revCache) get(user int64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[user]
}

func (c *revCache) set(user int64, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxRevs {
		c.m = make(map[int64]uint64, 1024)
	}
	c.m[user] = rev
}

// staleMarker is the value of a key whose page the next reader builds.
var staleMarker = []byte("stale")

// pageS2 starts a cached page compressed with S2 (the block format): the
// value is pageS2 then the S2 block of the page's JSON. A page of 20 orders
// shrinks about 3x (4.9 KB to 1.6 KB for 3 lines each), and every copy the
// server makes of it (storing, the compare-and-set's read of the last
// value, delivery) shrinks with it; encoding takes about 3 µs, decoding 1.
// A value starting with '[' is a page stored as plain JSON (still read).
const pageS2 = 0x01

// pageS2Merged starts a page made by merging new orders into the cached
// one: pageS2Merged, the number of merges since its page was last read
// from the store (one byte), then the S2 block of the page's JSON.
const pageS2Merged = 0x02

// encodeMergedPage is encodePage for a page merges merges away from the
// store (0: read from it).
func encodeMergedPage(dst, page []byte, merges byte) []byte {
	if merges == 0 {
		return encodePage(dst, page)
	}
	start := len(dst)
	dst = encodePage(dst, page)
	dst = append(dst, 0)
	copy(dst[start+2:], dst[start+1:len(dst)-1])
	dst[start], dst[start+1] = pageS2Merged, merges
	return dst
}

// decodeMergedPage is decodePage that also returns the page's merges.
func decodeMergedPage(v []byte) ([]byte, byte, bool) {
	if len(v) > 2 && v[0] == pageS2Merged {
		page, ok := decodePage(append([]byte{pageS2}, v[2:]...))
		return page, v[1], ok
	}
	page, ok := decodePage(v)
	return page, 0, ok
}

// encodePage appends the bucket value of a page (JSON array) to dst.
func encodePage(dst, page []byte) []byte {
	n := 1 + s2.MaxEncodedLen(len(page))
	if cap(dst)-len(dst) < n {
		dst = append(make([]byte, 0, len(dst)+n), dst...)
	}
	dst = append(dst, pageS2)
	enc := s2.Encode(dst[len(dst):len(dst)+n-1], page)
	return dst[:len(dst)+len(enc)]
}

// decodePage returns the page (JSON array) a bucket value holds; false for
// staleMarker or anything else that is not a page.
func decodePage(v []byte) ([]byte, bool) {
	switch {
	case len(v) == 0:
		return nil, false
	case v[0] == '[':
		return v, true
	case v[0] == pageS2Merged && len(v) > 2:
		return decodePage(append([]byte{pageS2}, v[2:]...))
	case v[0] == pageS2:
		page, err := s2.Decode(nil, v[1:])
		if err != nil || len(page) == 0 || page[0] != '[' {
			return nil, false
		}
		return page, true
	}
	return nil, false
}

// maxCASAttempts bounds the retries of one key's refresh.
const maxCASAttempts = 8

// refresh rewrites the first page of each user from the store, at most
// h.workers at a time; it returns how many failed and the first error.
func (h *hotCache) refresh(ctx context.Context, users []int64) (failed int, err error) {
	return h.refreshMerging(ctx, users, nil)
}

// refreshMerging is refresh where adds (by user) are orders just stored
// that a network store's refresh may merge into the cached page instead
// of reading the page back (see refreshFast).
func (h *hotCache) refreshMerging(ctx context.Context, users []int64, adds map[int64][]store.Order) (failed int, err error) {
	if h.js != nil {
		if users, err = h.refreshFast(ctx, users, adds); err != nil || len(users) == 0 {
			return len(users), err
		}
	}
	var (
		nfail    atomic.Int64
		firstErr error
		once     sync.Once
	)
	runtime.ForEach(users, h.workers, func(_ int, u int64) {
		if err := h.refreshUser(ctx, u); err != nil {
			// Best effort: a marker makes the next reader rebuild the
			// page; writing one blindly is always safe.
			_, _ = h.kv.Put(ctx, hotKey(u), staleMarker)
			nfail.Add(1)
			once.Do(func() { firstErr = fmt.Errorf("user %d: %w", u, err) })
		}
	})
	return int(nfail.Load()), firstErr
}

// refreshFast writes every user's page in one pipelined round trip and
// returns the users whose expected revision was wrong, for the slow path.
func (h *hotCache) refreshFast(ctx context.Context, users []int64, adds map[int64][]store.Order) ([]int64, error) {
	type pending struct {
		user int64
		fut  jetstream.PubAckFuture
		buf  *[]byte
	}
	inflight := make([]pending, 0, len(users))
	var retry []int64
	settle := func(p pending) error {
		select {
		case ack := <-p.fut.Ok():
			h.revs.set(p.user, ack.Sequence)
		case <-p.fut.Err():
			retry = append(retry, p.user)
		case <-ctx.Done():
			return ctx.Err() // the buffer may still be held for a retry: not reused
		}
		// The publish is settled, nothing holds the page any more.
		pagePool.Put(p.buf)
		return nil
	}
	// The store lists pages over the network (Vitess; a local store is not
	// refreshed, see local), so it is not read page by page, one after the
	// other (a round of a thousand users waited a thousand round trips): the
	// users' pages are prepared at once, h.workers at a time (prepare),
	// mostly by merging the new orders into the cached page.
	pre := make([]prefetched, len(users))
	runtime.ForEach(users, h.workers, func(i int, u int64) {
		pre[i] = h.prepare(ctx, u, adds[u])
	})
	done := 0
	for i, u := range users {
		// Pace the burst: at most maxRefreshInFlight unacked pages, so a
		// round does not queue ahead of the order publishes it shares the
		// server with.
		for len(inflight)-done >= maxRefreshInFlight {
			if err := settle(inflight[done]); err != nil {
				return users, err
			}
			done++
		}
		rev, page, merges := pre[i].rev, pre[i].page, pre[i].merges
		if err := pre[i].err; err != nil {
			return users, err
		}
		buf := pagePool.Get().(*[]byte)
		*buf = encodeMergedPage((*buf)[:0], page, merges)
		m := &nats.Msg{Subject: "$KV." + h.bucket + "." + hotKey(u), Data: *buf,
			Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(rev, 10)}}}
		fut, err := h.js.PublishMsgAsync(m)
		if err != nil {
			pagePool.Put(buf)
			retry = append(retry, u)
			continue
		}
		inflight = append(inflight, pending{u, fut, buf})
	}
	for _, p := range inflight[done:] {
		if err := settle(p); err != nil {
			return users, err
		}
	}
	return retry, nil
}

// prefetched is a user's page prepared ahead of its write: the revision
// the key is expected to have, the page and how many merges it carries.
type prefetched struct {
	rev    uint64
	page   []byte
	merges byte
	err    error
}

// maxMerges is how many merged refreshes a page takes before the next one
// reads it from the store again. Merges are exact, but a refresh that
// failed without even marking its page stale (the bucket down) leaves a
// page without that batch's orders, and merging on top of it would keep
// them out until the page expires; the store read puts them back.
const maxMerges = 16

// prepare makes a user's next page without the store when it can: the
// cached page (read now, with its revision for the compare-and-set) with
// the new orders merged in. Otherwise (no orders given, no cached page,
// a stale marker, maxMerges reached) the page is read from the store,
// expecting the revision this process last wrote.
func (h *hotCache) prepare(ctx context.Context, userID int64, add []store.Order) prefetched {
	p := prefetched{rev: h.revs.get(userID)}
	if add != nil {
		if e, err := h.kv.Get(ctx, hotKey(userID)); err == nil {
			if page, merges, ok := decodeMergedPage(e.Value()); ok && merges < maxMerges {
				if merged, err := mergePage(page, add); err == nil {
					return prefetched{rev: e.Revision(), page: merged, merges: merges + 1}
				}
			}
			// Read before the store, as the compare-and-set needs.
			p.rev = e.Revision()
		}
	}
	p.page, p.err = h.loadInto(ctx, userID, nil)
	return p
}

// mergePage returns page (a JSON array of stored orders, newest first)
// with add merged in, as the store lists them: newest created_at first,
// then the greater order_id; HotPageSize at most; an order already on the
// page is not added again. The page's orders are not decoded: each is
// copied as it is, found by its order_id and created_at (pageEntries);
// a page of another shape is decoded in full.
func mergePage(page []byte, add []store.Order) ([]byte, error) {
	entries, ok := pageEntries(page)
	if !ok {
		var orders []store.Order
		if err := json.Unmarshal(page, &orders); err != nil {
			return nil, err
		}
		entries = entries[:0]
		for _, o := range orders {
			raw, err := json.Marshal(o)
			if err != nil {
				return nil, err
			}
			entries = append(entries, pageEntry{id: o.OrderID, at: o.CreatedAt, raw: raw})
		}
	}
	for _, o := range add {
		if slices.ContainsFunc(entries, func(e pageEntry) bool { return e.id == o.OrderID }) {
			continue
		}
		raw, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		entries = append(entries, pageEntry{id: o.OrderID, at: o.CreatedAt, raw: raw})
	}
	slices.SortStableFunc(entries, func(a, b pageEntry) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return strings.Compare(b.id, a.id)
	})
	entries = entries[:min(len(entries), HotPageSize)]
	return jsonArray(entries, func(e pageEntry) []byte { return e.raw }), nil
}

// pageEntry is one order of a cached page: its JSON as it is, and what
// the page is sorted by.
type pageEntry struct {
	id  string
	at  time.Time
	raw []byte
}

// pageEntries splits a page as the stores write it (json.Marshal of
// []store.Order: objects starting with "order_id", each with one
// "created_at" string) into its orders without decoding them; false for
// anything else.
func pageEntries(page []byte) ([]pageEntry, bool) {
	if len(page) < 2 || page[0] != '[' || page[len(page)-1] != ']' {
		return nil, false
	}
	var out []pageEntry
	rest := page[1 : len(page)-1]
	for len(rest) > 0 {
		end, ok := objectEnd(rest)
		if !ok {
			return nil, false
		}
		raw := rest[:end]
		const idKey, atKey = `{"order_id":"`, `"created_at":"`
		if !bytes.HasPrefix(raw, []byte(idKey)) {
			return nil, false
		}
		id := raw[len(idKey):]
		q := bytes.IndexByte(id, '"')
		if q < 0 || bytes.IndexByte(id[:q], '\\') >= 0 {
			return nil, false
		}
		a := bytes.LastIndex(raw, []byte(atKey))
		if a < 0 {
			return nil, false
		}
		at := raw[a+len(atKey):]
		aq := bytes.IndexByte(at, '"')
		if aq < 0 {
			return nil, false
		}
		t, err := time.Parse(time.RFC3339Nano, string(at[:aq]))
		if err != nil {
			return nil, false
		}
		out = append(out, pageEntry{id: string(id[:q]), at: t, raw: raw})
		rest = rest[end:]
		if len(rest) > 0 {
			if rest[0] != ',' {
				return nil, false
			}
			rest = rest[1:]
		}
	}
	return out, true
}

// objectEnd is the length of the JSON object b starts with (strings and
// nesting followed); false when b does not start with one or it does not end.
func objectEnd(b []byte) (int, bool) {
	if len(b) == 0 || b[0] != '{' {
		return 0, false
	}
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

// refreshUser makes the user's cached page match the store (see hotCache).
func (h *hotCache) refreshUser(ctx context.Context, userID int64) error {
	key := hotKey(userID)
	for range maxCASAttempts {
		e, err := h.kv.Get(ctx, key)
		switch {
		case isKeyNotFound(err): // absent (or expired since)
			page, lerr := h.loadValue(ctx, userID)
			if lerr != nil {
				return lerr
			}
			var rev uint64
			if rev, err = h.kv.Create(ctx, key, page); err == nil {
				h.revs.set(userID, rev)
			}
		case err != nil:
			return err
		default:
			page, lerr := h.loadValue(ctx, userID)
			if lerr != nil {
				return lerr
			}
			if bytes.Equal(e.Value(), page) {
				h.revs.set(userID, e.Revision())
				return nil // already current (e.g. a redelivered batch)
			}
			var rev uint64
			if rev, err = h.kv.Update(ctx, key, page, e.Revision()); err == nil {
				h.revs.set(userID, rev)
			}
		}
		if err == nil || !runtime.IsKVConflict(err) {
			return err
		}
	}
	return errCacheConflicts
}

// load reads the user's first page from the store, as JSON.
func (h *hotCache) load(ctx context.Context, userID int64) ([]byte, error) {
	return h.loadInto(ctx, userID, nil)
}

// loadValue reads the user's first page from the store, as cached.
func (h *hotCache) loadValue(ctx context.Context, userID int64) ([]byte, error) {
	page, err := h.load(ctx, userID)
	if err != nil {
		return nil, err
	}
	return encodePage(nil, page), nil
}

// pagePool recycles the page buffers of refresh rounds.
var pagePool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// loadInto is load appending the page to dst.
func (h *hotCache) loadInto(ctx context.Context, userID int64, dst []byte) ([]byte, error) {
	if pa, ok := h.store.(pageAppender); ok {
		page, err := pa.AppendOrdersPage(ctx, userID, HotPageSize, dst)
		if err != nil {
			return nil, fmt.Errorf("list orders of user %d: %w", userID, err)
		}
		return page, nil
	}
	orders, err := h.store.ListOrders(ctx, userID, 0, HotPageSize)
	if err != nil {
		return nil, fmt.Errorf("list orders of user %d: %w", userID, err)
	}
	if orders == nil {
		orders = []store.Order{}
	}
	return json.Marshal(orders)
}

// get returns the user's first page: from a local store itself (see
// local); else from the bucket, or when it is missing or stale from the
// store, then written to the bucket unless a writer changed the key in
// between. When the bucket fails, the store answers: the cache is an
// optimization.
func (h *hotCache) get(ctx context.Context, userID int64) ([]byte, error) {
	if h.local() {
		return h.load(ctx, userID)
	}
	key := hotKey(userID)
	e, err := h.kv.Get(ctx, key)
	if err == nil {
		if page, ok := decodePage(e.Value()); ok {
			return page, nil
		}
	}
	page, lerr := h.load(ctx, userID)
	if lerr != nil {
		return nil, lerr
	}
	val := encodePage(nil, page)
	// Compare-and-set only: a conflict means a writer got there first, and
	// any other failure leaves the miss to the next read. Either way the
	// page just read from the store is the right answer.
	switch {
	case err == nil:
		_, _ = h.kv.Update(ctx, key, val, e.Revision())
	case isKeyNotFound(err):
		_, _ = h.kv.Create(ctx, key, val)
	}
	return page, nil
}

// splitPage splits a cached page into its orders.
func splitPage(page []byte) ([]json.RawMessage, error) {
	var orders []json.RawMessage
	if err := json.Unmarshal(page, &orders); err != nil {
		return nil, fmt.Errorf("hot cache page: %w", err)
	}
	return orders, nil
}
