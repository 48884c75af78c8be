// Package buntstore is the embedded store backend: buntdb files sharded by
// user-ID hash, the same sharding idea as the Vitess keyspace.
//
// # Sharding
//
// A directory holds N shard files (shard-00.db ...) and one stats.db. A user's
// rows live in shard XXH64(user id as 8 big-endian bytes) mod N; rows keyed by
// a string (order-id lookups, SMS) live in shard XXH64(key) mod N. XXH64 (seed
// 0) is a fixed specification, so the mapping never changes; FNV-1a was
// rejected because its low bits, which mod N keeps, barely depend on the
// upper bytes, so ids with a common low byte would pile into one shard. Like
// the Vitess hash vindex it spreads ids evenly; unlike it the placement is a
// plain modulus, so N is fixed when the directory is created: every shard
// stores the marker meta:shard = "i/N" and Open refuses a different N
// (ErrShardCount) rather than silently reading half the data.
//
// # Data model
//
// User ids are written as uint64 in 20 zero-padded digits (u20 below) so that
// key order is numeric order and every int64 has one spelling. Timestamps are
// UnixNano with the sign bit flipped, also 20 digits (ts20), so key order is
// time order for any int64. A record of a user lives in the user's shard; a
// record keyed by a string lives in that string's shard (the id shard). Each
// domain (store.Orders, store.SignIns, ...) is one file here that implements
// it and lists its keys, each under a key prefix of its own; a new domain is
// a new file with a new prefix and needs no change to this one.
//
// # Writes
//
// Every file uses buntdb.Always: each write transaction is one append and one
// fsync, so a call that returns nil is durable, and batching many rows per
// transaction is what makes throughput. Single-record writes go through the
// shard's group committer (commit.go), so concurrent writers share an fsync.
// A transaction that changes nothing writes and syncs nothing, so
// redeliveries are cheap.
//
// buntdb keeps every key in memory and the files are append-only logs that it
// rewrites (shrinks) in the background once they double.
package buntstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

// DefaultShards is the number of shard files of a new store when none is
// configured.
const DefaultShards = 8

// Errors of this backend besides those of package store.
var (
	// ErrShardCount means the directory was created with another number of
	// shards; its data cannot be read with this one without a migration.
	ErrShardCount = errors.New("shard count differs from the one the store was created with")
	// ErrShardMarker means a shard file lacks or has the wrong shard marker:
	// it was lost, replaced or copied from another store.
	ErrShardMarker = errors.New("shard file has a missing or foreign shard marker")
)

const metaKey = "meta:shard"

// idKey holds the store's id in shard 0: random, written at the first
// open, so hosts can tell this store's data from another directory's
// (store.Identifier).
const idKey = "meta:store-id"

// Store is a set of buntdb shards plus the event-counter file. It is safe
// for concurrent use.
type Store struct {
	dir    string
	id     string // idKey
	shards []*buntdb.DB
	stats  *buntdb.DB
	// commits group single-record writes per shard (see committer).
	commits []*committer
	// heads are the newest rows of recently paged users, per shard.
	heads []*heads
	// peb holds the orders when the store was created with the pebble
	// orders engine (pebble.go); nil: they are in the shards.
	peb    *pebbleOrders
	closed atomic.Bool
}

// Each domain's file checks that Store implements that domain.
var _ store.Store = (*Store)(nil)

// ID is the backend's id, --store buntdb.
const ID = "buntdb"

func init() { store.Register(store.Backend{ID: ID, Open: openBackend, Local: true}) }

// Config is the backend's config, a JSON object decoded strictly.
type Config struct {
	// Shards is the number of shard files (--shards); 0 means the count
	// the directory was created with, or DefaultShards for a new one.
	Shards int `json:"shards"`
	// Orders is the engine the orders are kept in: "buntdb" (the shards)
	// or "pebble" (pebble.go). "" means the engine the directory was
	// created with, or DefaultOrders for a new one; any other value must
	// match that engine.
	Orders string `json:"orders"`
}

// DefaultOrders is the orders engine of a new store when none is
// configured: pebble, whose memory does not grow with the orders stored
// (pebble.go). Stores created before it keep theirs.
const DefaultOrders = OrdersPebble

// Options are the settings of OpenWith.
type Options struct {
	// Shards is as Config.Shards.
	Shards int
	// Orders is as Config.Orders.
	Orders string
	// Logger receives the log lines of the pebble engine; nil discards
	// them.
	Logger *slog.Logger
}

// openBackend opens the store in the platform's store directory.
func openBackend(_ context.Context, oc store.OpenContext, config json.RawMessage) (store.Store, error) {
	var cfg Config
	if err := store.DecodeConfig(config, &cfg); err != nil {
		return nil, fmt.Errorf("buntstore: config: %w", err)
	}
	if cfg.Shards < 0 {
		return nil, fmt.Errorf("buntstore: config: shards: must be >= 0 (0 = as created, else %d), got %d: %w", DefaultShards, cfg.Shards, store.ErrBadConfig)
	}
	switch cfg.Orders {
	case "", OrdersBuntDB, OrdersPebble:
	default:
		return nil, fmt.Errorf("buntstore: config: orders: %q is no orders engine (%q or %q; \"\" = as created, else %q): %w",
			cfg.Orders, OrdersBuntDB, OrdersPebble, DefaultOrders, store.ErrBadConfig)
	}
	s, err := OpenWith(oc.Dir, Options{Shards: cfg.Shards, Orders: cfg.Orders, Logger: oc.Logger})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Open opens (creating) n shard files and stats.db under dir, the orders in
// the engine the directory was created with (DefaultOrders for a new one).
// A n <= 0 means the count the directory was created with, or
// DefaultShards for a new directory; any other n must match that count.
// Every commit is fsynced (buntdb.Always), so a write acknowledged by the
// store survives a crash.
func Open(dir string, n int) (*Store, error) { return OpenWith(dir, Options{Shards: n}) }

// OpenWith is Open with the orders engine (and a logger for it) as well.
// An engine other than the one the directory was created with is
// ErrOrdersEngine; a directory created before the pebble engine has its
// orders in the shards.
func OpenWith(dir string, o Options) (*Store, error) {
	n := o.Shards
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("buntstore: store dir: %w", err)
	}
	s := &Store{dir: dir}
	// Shard 0 first: its marker gives the count before any other file is
	// created under a wrong count.
	db0, err := openDB(filepath.Join(dir, shardFile(0)))
	if err != nil {
		return nil, fmt.Errorf("buntstore: open %s: %w", shardFile(0), err)
	}
	s.shards = append(s.shards, db0)
	_, stored, err := readMarker(db0)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("buntstore: read %s: %w", shardFile(0), err)
	}
	switch {
	case stored > 0 && n <= 0:
		n = stored
	case stored > 0 && n != stored:
		_ = s.Close()
		return nil, fmt.Errorf("buntstore: %s holds %d shards, asked to open %d: %w", dir, stored, n, ErrShardCount)
	case n <= 0:
		n = DefaultShards
	}
	for i := 1; i < n; i++ {
		db, err := openDB(filepath.Join(dir, shardFile(i)))
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("buntstore: open %s: %w", shardFile(i), err)
		}
		s.shards = append(s.shards, db)
	}
	if err := s.checkMarkers(stored > 0); err != nil {
		_ = s.Close()
		return nil, err
	}
	if s.id, err = loadOrCreateID(s.shards[0]); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("buntstore: store id in %s: %w", shardFile(0), err)
	}
	if s.stats, err = openDB(filepath.Join(dir, "stats.db")); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("buntstore: open stats.db: %w", err)
	}
	engine, created, err := s.ordersEngine(o.Orders)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("buntstore: %s: %w", dir, err)
	}
	if engine == OrdersPebble {
		log := o.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		if s.peb, err = openPebble(filepath.Join(dir, pebbleDir), created, log); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("buntstore: open %s: %w", pebbleDir, err)
		}
	}
	for _, db := range s.shards {
		s.commits = append(s.commits, newCommitter(db))
		s.heads = append(s.heads, newHeads())
	}
	return s, nil
}

// ordersEngine returns the orders engine of the store, recording want (or
// DefaultOrders) in a store that has none recorded yet. A store without
// the record but with orders in its shards (one of an earlier version)
// has them in buntdb. created reports that the engine is new to the store.
func (s *Store) ordersEngine(want string) (engine string, created bool, err error) {
	var found bool
	err = s.shards[0].View(func(tx *buntdb.Tx) error {
		v, err := tx.Get(ordersKey)
		if isNotFound(err) {
			return nil
		}
		engine, found = v, err == nil
		return err
	})
	if err != nil {
		return "", false, err
	}
	if !found {
		switch held, err := s.holdsOrders(); {
		case err != nil:
			return "", false, err
		case held:
			engine = OrdersBuntDB
		case want != "":
			engine, created = want, true
		default:
			engine, created = DefaultOrders, true
		}
	}
	if engine != OrdersBuntDB && engine != OrdersPebble {
		return "", false, fmt.Errorf("%s is %q: %w", ordersKey, engine, ErrShardMarker)
	}
	if want != "" && want != engine {
		return "", false, fmt.Errorf("its orders are in %s, asked for %s: %w", engine, want, ErrOrdersEngine)
	}
	if !found {
		err = s.shards[0].Update(func(tx *buntdb.Tx) error {
			_, _, err := tx.Set(ordersKey, engine, nil)
			return err
		})
	}
	return engine, created, err
}

// holdsOrders reports whether any shard holds an order key.
func (s *Store) holdsOrders() (bool, error) {
	for _, db := range s.shards {
		held := false
		err := db.View(func(tx *buntdb.Tx) error {
			for _, prefix := range []string{"id:", "o:"} {
				err := tx.AscendRange("", prefix, prefix[:len(prefix)-1]+";", func(string, string) bool {
					held = true
					return false
				})
				if err != nil || held {
					return err
				}
			}
			return nil
		})
		if err != nil || held {
			return held, err
		}
	}
	return false, nil
}

// loadOrCreateID returns the id in db, writing a new one if it has none.
func loadOrCreateID(db *buntdb.DB) (string, error) {
	var id string
	err := db.Update(func(tx *buntdb.Tx) error {
		v, err := tx.Get(idKey)
		if err == nil {
			id = v
			return nil
		}
		if !errors.Is(err, buntdb.ErrNotFound) {
			return err
		}
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		id = hex.EncodeToString(b)
		_, _, err = tx.Set(idKey, id, nil)
		return err
	})
	return id, err
}

// StoreID is the id written into the store at its first open: equal for
// every open of the same files, different for any other directory.
func (s *Store) StoreID() string { return s.id }

var _ store.Identifier = (*Store)(nil)

func shardFile(i int) string { return fmt.Sprintf("shard-%02d.db", i) }

func openDB(path string) (*buntdb.DB, error) {
	db, err := buntdb.Open(path)
	if err != nil {
		return nil, err
	}
	var cfg buntdb.Config
	if err := db.ReadConfig(&cfg); err != nil {
		_ = db.Close()
		return nil, err
	}
	cfg.SyncPolicy = buntdb.Always
	if err := db.SetConfig(cfg); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// readMarker returns the shard's "i/N" marker, or n == 0 if it has none.
func readMarker(db *buntdb.DB) (i, n int, err error) {
	var v string
	err = db.View(func(tx *buntdb.Tx) error {
		v, err = tx.Get(metaKey)
		return err
	})
	if errors.Is(err, buntdb.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscanf(v, "%d/%d", &i, &n); err != nil || n <= 0 {
		return 0, 0, fmt.Errorf("marker %q: %w", v, ErrShardMarker)
	}
	return i, n, nil
}

// checkMarkers verifies every shard's marker and writes the missing ones.
// Shard 0's marker is written last, so it existing (initialized) means all
// were written, and a shard without one is a lost file. Before that, shards
// may lack markers (a new store, or a crash while creating one) but none may
// hold data: data there means shard 0 was lost.
func (s *Store) checkMarkers(initialized bool) error {
	n := len(s.shards)
	for i := n - 1; i >= 0; i-- {
		db := s.shards[i]
		mi, mn, err := readMarker(db)
		switch {
		case err != nil:
			return fmt.Errorf("buntstore: %s: %w", shardFile(i), err)
		case mn != 0 && (mi != i || mn != n):
			return fmt.Errorf("buntstore: %s is shard %d/%d, want %d/%d: %w", shardFile(i), mi, mn, i, n, ErrShardMarker)
		case initialized && mn == 0:
			return fmt.Errorf("buntstore: %s has no marker but %s has (file lost?): %w", shardFile(i), shardFile(0), ErrShardMarker)
		case initialized:
			continue
		}
		data := 0
		err = db.Update(func(tx *buntdb.Tx) error {
			keys, err := tx.Len()
			if err != nil {
				return err
			}
			if mn != 0 {
				data = keys - 1
				return nil
			}
			if data = keys; data > 0 {
				return nil
			}
			_, _, err = tx.Set(metaKey, fmt.Sprintf("%d/%d", i, n), nil)
			return err
		})
		if err != nil {
			return fmt.Errorf("buntstore: mark %s: %w", shardFile(i), err)
		}
		if data > 0 {
			return fmt.Errorf("buntstore: %s holds data but %s has no marker (file lost?): %w", shardFile(i), shardFile(0), ErrShardMarker)
		}
	}
	return nil
}

func (s *Store) userShard(userID int64) int {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(userID))
	return int(xxhash.Sum64(b[:]) % uint64(len(s.shards)))
}

func (s *Store) keyShard(key string) int {
	return int(xxhash.Sum64String(key) % uint64(len(s.shards)))
}

// Ping reports whether every file answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	for i, db := range append(s.shards[:len(s.shards):len(s.shards)], s.stats) {
		if err := db.View(func(tx *buntdb.Tx) error { _, err := tx.Len(); return err }); err != nil {
			return s.fail(fmt.Sprintf("ping file %d", i), err)
		}
	}
	if s.peb != nil {
		if err := s.peb.ping(); err != nil {
			return s.fail("ping "+pebbleDir, err)
		}
	}
	return nil
}

// Close closes every file. Calls after Close return store.ErrClosed; a
// second Close returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for _, c := range s.commits {
		c.close()
	}
	var errs []error
	if s.peb != nil {
		if err := s.peb.close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, db := range append(s.shards[:len(s.shards):len(s.shards)], s.stats) {
		if db == nil {
			continue
		}
		if err := db.Close(); err != nil && !errors.Is(err, buntdb.ErrDatabaseClosed) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("buntstore: close: %w", err)
	}
	return nil
}

// check is the entry test of every call.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("buntstore: %w", store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("buntstore: %w", err)
	}
	return nil
}

// fail wraps err for op, turning buntdb's closed and not-found errors into
// the store sentinels.
func (s *Store) fail(op string, err error) error {
	switch {
	case errors.Is(err, buntdb.ErrDatabaseClosed):
		err = store.ErrClosed
	case errors.Is(err, buntdb.ErrNotFound):
		err = store.ErrNotFound
	}
	return fmt.Errorf("buntstore: %s: %w", op, err)
}

func isNotFound(err error) bool      { return errors.Is(err, buntdb.ErrNotFound) }
func isStoreNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// pad20 writes v as 20 zero-padded decimal digits, enough for any uint64.
func pad20(v uint64) string { return string(appendPad20(make([]byte, 0, 20), v)) }

// appendPad20 appends pad20(v) to dst.
func appendPad20(dst []byte, v uint64) []byte {
	var b [20]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:]...)
}

func userKey(userID int64) string { return pad20(uint64(userID)) }

func parseUserKey(u20 string) (int64, error) {
	v, err := strconv.ParseUint(u20, 10, 64)
	return int64(v), err
}
