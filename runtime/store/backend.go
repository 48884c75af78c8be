package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// Backend is a store implementation: the id --store names it by, and the
// function that opens it. A backend registers itself from init with
// Register, and runtime/store/all imports every backend surge ships.
type Backend struct {
	ID string
	// Open opens the store with config, the backend's settings as one JSON
	// object (nil or empty: every default). Decode it with DecodeConfig,
	// so that an unknown field is an error.
	Open func(ctx context.Context, oc OpenContext, config json.RawMessage) (Store, error)
	// Local means the store is files under OpenContext.Dir that belong to
	// one process: two processes on the same files, or hosts on files of
	// their own, would answer from different stores.
	Local bool
}

// OpenContext is what the platform gives every backend besides its config.
type OpenContext struct {
	// Dir is the directory a backend keeping local files uses:
	// <--data>/store.
	Dir string
	// Logger receives the backend's logs; never nil.
	Logger *slog.Logger
}

var (
	backendsMu sync.RWMutex
	backends   = map[string]Backend{}
)

// Register adds a backend; it panics on a duplicate or empty id, as both
// are programming errors found at init.
func Register(b Backend) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if b.ID == "" || b.Open == nil {
		panic("store: backend needs an ID and an Open function")
	}
	if _, dup := backends[b.ID]; dup {
		panic("store: backend registered twice: " + b.ID)
	}
	backends[b.ID] = b
}

// Backends lists the registered backend ids, sorted.
func Backends() []string {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	ids := make([]string, 0, len(backends))
	for id := range backends {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Lookup returns the backend registered under id.
func Lookup(id string) (Backend, bool) {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	b, ok := backends[id]
	return b, ok
}

// UnknownBackend is the error for an id no backend is registered under:
// ErrUnknownBackend, with the registered ids in the message.
func UnknownBackend(id string) error {
	known := "none is registered"
	if ids := Backends(); len(ids) > 0 {
		known = "known: " + strings.Join(ids, ", ")
	}
	return fmt.Errorf("%w %q (%s)", ErrUnknownBackend, id, known)
}

// Open opens the backend registered under id with config. An unknown id is
// ErrUnknownBackend, with the registered ids in the message.
func Open(ctx context.Context, id string, oc OpenContext, config json.RawMessage) (Store, error) {
	b, ok := Lookup(id)
	if !ok {
		return nil, UnknownBackend(id)
	}
	if oc.Logger == nil {
		oc.Logger = slog.New(slog.DiscardHandler)
	}
	return b.Open(ctx, oc, config)
}

// DecodeConfig decodes a backend's config into v strictly: an unknown field
// or trailing data is an error wrapping ErrBadConfig. Nil, empty or null
// config leaves v as it is.
func DecodeConfig(config json.RawMessage, v any) error {
	config = bytes.TrimSpace(config)
	if len(config) == 0 || bytes.Equal(config, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the config object", ErrBadConfig)
	}
	return nil
}
