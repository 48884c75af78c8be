// Package store defines the storage the built-in functions need, split by
// domain: a backend is a Store (Ping and Close) that implements any of the
// domain interfaces Orders, SignIns, Messages, Events and Profiles, each declared with
// its types in its own file. A function asks for the domains it uses in its
// Provision with As, and keeps only those narrow interfaces.
//
// Backends register themselves with Register, the way functions register
// their modules, and the platform opens the one the user picked with Open,
// by id. Two ship with surge: buntdb files sharded by user-ID hash
// (runtime/store/buntstore, the embedded default) and a Vitess keyspace
// sharded by the same key (runtime/store/vitess); runtime/store/all imports
// both. The conformance suite in runtime/store/storetest, one sub-suite per
// domain, is what every backend must pass for the domains it implements.
//
// Every write is idempotent on its natural key (order_id; user_id+day;
// message_id; stream sequence for event counts; profiles are written by
// compare-and-set on their version), so a redelivered stream
// message never creates a second row, and every write is durable when the
// call returns, so a stream message may be acked right after.
package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
)

// Sentinel errors of every backend; wrap with %w, test with errors.Is.
var (
	// ErrNotFound means no record has that key.
	ErrNotFound = errors.New("not found")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrUnsupported means the store lacks a domain a function needs: the
	// backend does not implement that interface, or there is no store.
	ErrUnsupported = errors.New("store does not support this domain")
	// ErrUnknownBackend means no backend is registered under the id.
	ErrUnknownBackend = errors.New("unknown store backend")
	// ErrBadConfig means a backend's config does not decode or validate.
	ErrBadConfig = errors.New("bad store config")
	// ErrUnavailable means the store's service does not answer yet (not
	// started, not serving, unreachable): opening it again later may
	// succeed, so the platform retries an Open that fails with it, where
	// any other error refuses the start.
	ErrUnavailable = errors.New("store unavailable")
	// ErrVersionConflict means a compare-and-set write found another
	// version than the one it expected (Profiles.PutProfile).
	ErrVersionConflict = errors.New("version conflict")
)

// Store is what every backend implements; the domains it supports are the
// domain interfaces it implements besides. Implementations are safe for
// concurrent use.
type Store interface {
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend. Calls after Close return ErrClosed.
	Close() error
}

// As returns s as the domain interface D (Orders, SignIns, Messages,
// Events), for a function's Provision. The error wraps ErrUnsupported and
// names the backend and the domain when s does not implement D or is nil.
func As[D any](s Store) (D, error) {
	d, ok := s.(D)
	if ok {
		return d, nil
	}
	domain := reflect.TypeFor[D]().String()
	if s == nil {
		return d, fmt.Errorf("no store to provide %s (run on a runtime host with --store): %w", domain, ErrUnsupported)
	}
	return d, fmt.Errorf("store backend %T does not implement %s: %w", s, domain, ErrUnsupported)
}
