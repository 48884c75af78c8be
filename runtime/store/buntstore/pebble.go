package buntstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/surgefn/surge/runtime/store"
)

// Orders engines. buntdb keeps every key and row in memory: about 357
// bytes of live heap per stored order (row strings, items, B-tree nodes,
// id lookups) and, with the GC's headroom, about 1 KiB of RSS, and the
// GC's mark work grows with it (store-growth run, BENCHMARKS.md). The
// pebble engine keeps orders in a Pebble LSM tree (the storage engine of
// CockroachDB) under <dir>/orders.pebble: rows live in files, memory is a
// bounded block cache and memtables, so RSS and GC cost do not grow with
// the orders stored. Every other domain stays in the buntdb shards.
const (
	OrdersBuntDB = "buntdb"
	OrdersPebble = "pebble"
)

// ErrOrdersEngine means the directory keeps its orders in another engine
// than the one asked for; its orders cannot be read without a migration.
var ErrOrdersEngine = errors.New("orders engine differs from the one the store was created with")

// ordersKey, in shard 0, names the engine the orders of the store are in.
// A store without it was created before the pebble engine: buntdb.
const ordersKey = "meta:orders"

const (
	pebbleDir = "orders.pebble"
	// pebbleCache is the block cache, and pebbleMemTable the size of one
	// memtable (Pebble keeps up to pebbleMemTables of them while they are
	// flushed): together the memory the engine holds, whatever the number
	// of orders stored.
	pebbleCache     = 64 << 20
	pebbleMemTable  = 16 << 20
	pebbleMemTables = 4
	pebbleL0        = 16
)

// pebbleOrders is the pebble orders engine. Its keys and rows are those of
// the buntdb layout (orders.go) in its compact form: o:<u20>:<ts20>:<id>
// holds the row (row.go) and id:<id> the user and timestamp. Unlike the
// buntdb shards, one Pebble batch holds both keys of an order, so no
// reservation is ever left without its row.
type pebbleOrders struct {
	db *pebble.DB
	// put serializes the check-and-apply of PutOrders, so that two batches
	// holding the same order id never both find it absent; the WAL fsync
	// of a batch is waited for outside it, so concurrent batches share
	// fsyncs (Pebble's commit pipeline).
	put sync.Mutex
	// life is held (read) by every call and (write) by close: Pebble
	// panics on a call after Close.
	life   sync.RWMutex
	closed bool
	// ids spares PutOrders the Pebble reads of new ids once scanIDs has
	// filled it; stop ends that scan early (close) and scanned is closed
	// when it has ended.
	ids     *idFilter
	stop    chan struct{}
	scanned chan struct{}
	log     *slog.Logger
}

// openPebble opens (creating) the engine in dir. create is false for a
// store whose marker says pebble: the files must be there.
func openPebble(dir string, create bool, log *slog.Logger) (*pebbleOrders, error) {
	cache := pebble.NewCache(pebbleCache)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                pebbleMemTable,
		MemTableStopWritesThreshold: pebbleMemTables,
		ErrorIfNotExists:            !create,
		Logger:                      pebbleLogger{log},
	}
	// A bloom filter per table: most id lookups are of new ids, which
	// the filters answer without reading (and decompressing) a block.
	// L1 and below inherit it.
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	// L0 compactions start at pebbleL0 sublevels instead of 4: each then
	// merges more L0 tables into the level below, which rewrites its
	// overlapping tables less often. Measured, 3M orders put by 8
	// writers in batches of 1000 (twice each): 5.08/4.96 us of CPU per
	// order at 4, 4.14/4.20 at 8, 3.84/3.76 at 16; page walks and id
	// reads right after the fill 19-26 us either way. Writes stop at
	// four times as many.
	opts.L0CompactionThreshold = pebbleL0
	opts.L0StopWritesThreshold = 4 * pebbleL0
	opts.EnsureDefaults()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	p := &pebbleOrders{db: db, ids: newIDFilter(idFilterStart), stop: make(chan struct{}), scanned: make(chan struct{}), log: log}
	go p.scanIDs()
	return p, nil
}

// idFilterStart is the number of ids the first filter of the chain is
// sized for (about 1.2 MiB); tests lower it to make the chain grow.
var idFilterStart uint = 1 << 20

// scanIDs adds the id: keys stored to p.ids and makes it ready. PutOrders
// adds the ids it stores meanwhile itself, so every id is in the filter:
// each id applied before the iterator of a chunk was made is in its view,
// each later one was added by its put before its batch was applied (no
// path deletes id: keys). A chunk of keys is read with an iterator of its
// own, closed before the next, so that the scan does not pin memtables and
// tables for its whole length, and is read without the put lock, which is
// held only to add the chunk.
func (p *pebbleOrders) scanIDs() {
	defer close(p.scanned)
	if err := p.enter(); err != nil {
		return
	}
	defer p.life.RUnlock()
	start := time.Now()
	var (
		n     int
		keys  [][]byte
		buf   []byte
		lower = []byte(idPrefix)
	)
	for {
		if scanPause != nil {
			scanPause()
		}
		select {
		case <-p.stop:
			return
		default:
		}
		keys, buf = keys[:0], buf[:0]
		more, err := p.readKeys(lower, idScanChunk, func(k []byte) {
			buf = append(buf, k...)
			keys = append(keys, buf[len(buf)-len(k):])
		})
		if err != nil {
			p.log.Error("order id filter: scan failed, every put reads its ids", "err", err)
			return
		}
		p.put.Lock()
		for _, k := range keys {
			p.ids.add(idHash(k))
		}
		n += len(keys)
		if !more {
			p.ids.ready.Store(true)
			size := p.ids.bytes()
			p.put.Unlock()
			p.log.Info("order id filter ready", "ids", n, "bytes", size, "took", time.Since(start).Round(time.Millisecond))
			return
		}
		p.put.Unlock()
		// The next chunk starts after the last key: the key with a zero
		// byte appended is the least key above it.
		lower = append(append(lower[:0:0], keys[len(keys)-1]...), 0)
	}
}

// readKeys calls f with up to max id: keys from lower on (f must copy the
// key), and reports whether there may be more.
func (p *pebbleOrders) readKeys(lower []byte, max int, f func(k []byte)) (more bool, err error) {
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte(idPrefixEnd)})
	if err != nil {
		return false, err
	}
	i := 0
	for valid := it.First(); valid; valid = it.Next() {
		if i == max {
			more = true
			break
		}
		f(it.Key())
		i++
	}
	return more, errors.Join(it.Error(), it.Close())
}

// scanPause, when set (tests), is called before each chunk of scanIDs.
var scanPause func()

// idScanChunk is how many keys scanIDs adds per hold of the put lock.
const idScanChunk = 4096

// idPrefix starts every id: key, and idPrefixEnd is the first key after
// them all.
const (
	idPrefix    = "id:"
	idPrefixEnd = "id;"
)

// pebbleLogger sends Pebble's log lines to the store's logger: its info
// lines (flushes, compactions) at debug.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "engine", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "engine", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "engine", "pebble")
	panic("buntstore: pebble: " + msg)
}

// enter starts a call; the caller defers p.life.RUnlock() when it is nil.
func (p *pebbleOrders) enter() error {
	p.life.RLock()
	if p.closed {
		p.life.RUnlock()
		return fmt.Errorf("buntstore: %w", store.ErrClosed)
	}
	return nil
}

func (p *pebbleOrders) close() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.scanned
	p.life.Lock()
	defer p.life.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return p.db.Close()
}

// ping reads a key, which fails once Pebble cannot read its files.
func (p *pebbleOrders) ping() error {
	if err := p.enter(); err != nil {
		return err
	}
	defer p.life.RUnlock()
	_, err := p.has([]byte(ordersKey))
	return err
}

// get returns a copy of key's value, or found false.
func (p *pebbleOrders) get(key []byte) (v []byte, found bool, err error) {
	val, closer, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v = append([]byte(nil), val...)
	return v, true, closer.Close()
}

// has reports whether key is stored, without copying its value.
func (p *pebbleOrders) has(key []byte) (bool, error) {
	_, closer, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

// keyValue is a key and its value, both in a buffer of the caller.
type keyValue struct{ k, v []byte }

// putAdded is an order a put stores: its row entry (as appendRowEntry
// makes it) ends at end in putScratch.entries, its key at key, and its id:
// entry (key and value) ends at lookup in putScratch.lookups.
type putAdded struct {
	user     int64
	end, key int
	lookup   int
}

// putScratch is the memory of one put, reused by the next: nothing of it
// is kept once the put returns (the Pebble batch and the page heads copy
// what they keep).
type putScratch struct {
	add              []putAdded
	inBatch          map[string]struct{}
	entries, lookups []byte
	kvs              []keyValue
}

var putScratchPool = sync.Pool{New: func() any { return &putScratch{inBatch: map[string]struct{}{}} }}

// putScratchMax is the most buffer memory a pooled putScratch keeps: a
// put of more starts afresh (a batch of 1000 orders takes about 200 KiB).
const putScratchMax = 4 << 20

// getPutScratch returns an empty putScratch with room for n orders and
// entries and lookups of the given bytes.
func getPutScratch(n, entries, lookups int) *putScratch {
	sc := putScratchPool.Get().(*putScratch)
	if cap(sc.entries)+cap(sc.lookups) > putScratchMax {
		sc = &putScratch{inBatch: map[string]struct{}{}}
	}
	clear(sc.inBatch)
	sc.add = slices.Grow(sc.add[:0], n)
	sc.entries = slices.Grow(sc.entries[:0], entries)
	sc.lookups = slices.Grow(sc.lookups[:0], lookups)
	return sc
}

// putOrdersPebble is PutOrders on the engine: one batch for the orders not yet
// stored (both keys of each), fsynced before it returns.
func (s *Store) putOrdersPebble(ctx context.Context, orders []store.Order, rows []orderRow) (int, error) {
	p := s.peb
	if err := p.enter(); err != nil {
		return 0, err
	}
	defer p.life.RUnlock()
	b := p.db.NewBatch()
	defer b.Close()
	// The buffers at their full size: an entry is "o:<u20>:<ts20>:" and
	// the id, then the row; a lookup "id:", the id and lookupLen bytes.
	ids, rowBytes := 0, 0
	for i := range rows {
		ids += len(rows[i].id)
		rowBytes += len(rows[i].row)
	}
	sc := getPutScratch(len(rows), ids+rowBytes+len(rows)*len("o:00000000000000000000:00000000000000000000:"),
		ids+len(rows)*(len(idPrefix)+lookupLen))
	defer putScratchPool.Put(sc)
	add, inBatch, entries, lookups := sc.add, sc.inBatch, sc.entries, sc.lookups
	p.put.Lock()
	for i := range rows {
		r := &rows[i]
		if _, twice := inBatch[r.id]; twice {
			continue // an id twice in one batch: the first one counts
		}
		n0 := len(lookups)
		lookups = appendLookup(lookups, r.id, orders[i].UserID, r.ts)
		key := lookups[n0 : len(lookups)-lookupLen]
		h := idHash(key)
		if p.ids.mayHold(h) {
			found, err := p.has(key)
			if err != nil {
				p.put.Unlock()
				return 0, s.fail("put orders: look up ids", err)
			}
			if found {
				lookups = lookups[:n0]
				continue
			}
		}
		p.ids.add(h)
		inBatch[r.id] = struct{}{}
		var kl int
		entries, kl = appendRowEntry(entries, r.u20, r.ts, r.id, r.row)
		// Before the batch is applied: a page walk that read the old rows
		// must not fill the head afterwards (see heads).
		user := orders[i].UserID
		s.heads[s.userShard(user)].gen(user).Add(1)
		add = append(add, putAdded{user: user, end: len(entries), key: kl, lookup: len(lookups)})
	}
	if len(add) == 0 {
		p.put.Unlock()
		return 0, ctx.Err()
	}
	// Both keys of every order, set in key order: Pebble's memtable
	// insert starts its search where the previous key went in, so keys
	// in order take fewer comparisons than keys as they came.
	kvs := slices.Grow(sc.kvs[:0], 2*len(add))
	// The pool keeps what the buffers grew to (getPutScratch drops big ones).
	sc.add, sc.entries, sc.lookups, sc.kvs = add, entries, lookups, kvs[:0]
	e0, l0 := 0, 0
	for _, a := range add {
		kvs = append(kvs,
			keyValue{entries[e0:a.key], entries[a.key:a.end]},
			keyValue{lookups[l0 : a.lookup-lookupLen], lookups[a.lookup-lookupLen : a.lookup]})
		e0, l0 = a.end, a.lookup
	}
	slices.SortFunc(kvs, func(x, y keyValue) int { return bytes.Compare(x.k, y.k) })
	for _, kv := range kvs {
		if err := b.Set(kv.k, kv.v, nil); err != nil {
			p.put.Unlock()
			return 0, s.fail("put orders", err)
		}
	}
	err := p.db.ApplyNoSyncWait(b, pebble.Sync)
	p.put.Unlock()
	if err == nil {
		err = b.SyncWait()
	}
	n0 := 0
	for _, a := range add {
		hs := s.heads[s.userShard(a.user)]
		switch {
		case err != nil:
			hs.drop(a.user) // some rows may be visible: the next page walk rebuilds
		case hs.holds(a.user):
			// A head keeps its rows: a string of their own, not the batch's.
			e := string(entries[n0:a.end])
			kl := a.key - n0
			hs.merge(a.user, []headRow{{key: e[len("o:")+21 : kl], row: e[kl:]}})
		}
		n0 = a.end
	}
	if err != nil {
		return 0, s.fail("put orders", err)
	}
	return len(add), nil
}

// getOrderPebble is GetOrder on the engine.
func (s *Store) getOrderPebble(orderID string) (store.Order, error) {
	var o store.Order
	p := s.peb
	if err := p.enter(); err != nil {
		return o, err
	}
	defer p.life.RUnlock()
	v, found, err := p.get([]byte(lookupKey(orderID)))
	if err == nil && !found {
		err = store.ErrNotFound
	}
	if err != nil {
		return o, s.fail(fmt.Sprintf("get order %q", orderID), err)
	}
	user, u20, ts, old, err := orderAt(orderID, string(v))
	if err != nil {
		return o, err
	}
	if old {
		return o, fmt.Errorf("buntstore: get order %q: id lookup of the old layout: %w", orderID, errRow)
	}
	key := orderKey(u20, pad20(ts), orderID)
	row, found, err := p.get([]byte(key))
	if err == nil && !found {
		err = fmt.Errorf("id lookup without its row: %w", errRow)
	}
	if err != nil {
		return o, s.fail(fmt.Sprintf("get order %q", orderID), err)
	}
	if o, err = decodeRow(user, headRow{key: key[len("o:")+21:], row: string(row)}); err != nil {
		return o, fmt.Errorf("buntstore: get order %q: decode: %w", orderID, err)
	}
	return o, nil
}

// descendPebble walks the user's rows newest first (below them, when
// below is set), calling fn with each until it returns false; start runs
// before the walk reads anything.
func (s *Store) descendPebble(userID int64, below string, start func(), fn func(r headRow) bool) error {
	p := s.peb
	if err := p.enter(); err != nil {
		return err
	}
	defer p.life.RUnlock()
	prefix := "o:" + userKey(userID) + ":"
	// ';' follows ':', so [prefix, prefix;) is exactly the user's rows.
	upper := prefix[:len(prefix)-1] + ";"
	if below != "" {
		upper = below // exclusive
	}
	start()
	it, err := p.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte(prefix),
		UpperBound: []byte(upper),
	})
	if err != nil {
		return err
	}
	for ok := it.Last(); ok; ok = it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if !fn(headRow{key: string(it.Key()[len(prefix):]), row: string(v)}) {
			break
		}
	}
	return it.Close()
}
