// Package store defines the storage the built-in functions need, behind an
// interface with two backends: buntdb shards (embedded) and Vitess.
package store

import "context"

// Store is a storage backend.
type Store interface {
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend.
	Close() error
}
