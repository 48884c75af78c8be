// Package buntstore is the embedded store backend: buntdb files sharded by
// user-ID hash, the same sharding idea as the Vitess keyspace.
package buntstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tidwall/buntdb"
)

// DefaultShards is the number of buntdb files when none is configured.
const DefaultShards = 8

// Store is a set of buntdb shards.
type Store struct {
	dir    string
	shards []*buntdb.DB
}

// Open opens (creating) n shard files under dir. Every commit is fsynced
// (buntdb.Always), so a write acknowledged by the store survives a crash.
func Open(dir string, n int) (*Store, error) {
	if n <= 0 {
		n = DefaultShards
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store dir: %w", err)
	}
	s := &Store{dir: dir}
	for i := range n {
		db, err := buntdb.Open(filepath.Join(dir, fmt.Sprintf("shard-%02d.db", i)))
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("open shard %d: %w", i, err)
		}
		var cfg buntdb.Config
		if err := db.ReadConfig(&cfg); err != nil {
			_ = s.Close()
			return nil, err
		}
		cfg.SyncPolicy = buntdb.Always
		if err := db.SetConfig(cfg); err != nil {
			_ = s.Close()
			return nil, err
		}
		s.shards = append(s.shards, db)
	}
	return s, nil
}

// Ping reports whether every shard answers.
func (s *Store) Ping(ctx context.Context) error {
	for i, db := range s.shards {
		if err := db.View(func(tx *buntdb.Tx) error { _, err := tx.Len(); return err }); err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
	}
	return nil
}

// Close closes every shard.
func (s *Store) Close() error {
	var errs []error
	for _, db := range s.shards {
		if err := db.Close(); err != nil && !errors.Is(err, buntdb.ErrDatabaseClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
