package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/surgefn/surge/internal/registry"
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

// Identifier is implemented by a store that keeps an id with its data.
// A runtime host announces it in its heartbeat, so that a host whose
// local store (Backend.Local) is other data than the stores of the hosts
// already running refuses to start instead of answering from it.
type Identifier interface {
	// StoreID is the same for every open of the same data and differs
	// for any other data.
	StoreID() string
}

// OpenContext is what the platform gives every backend besides its config.
type OpenContext struct {
	// Dir is the directory a backend keeping local files uses:
	// <--data>/store.
	Dir string
	// Logger receives the backend's logs; never nil.
	Logger *slog.Logger
}

var backends registry.Of[Backend]

// Register adds a backend; it panics on a duplicate or empty id, as both
// are programming errors found at init.
func Register(b Backend) {
	if b.Open == nil {
		panic("store: backend " + b.ID + " needs an Open function")
	}
	backends.Add("store: backend", b.ID, b)
}

// Backends lists the registered backend ids, sorted.
func Backends() []string { return backends.IDs() }

// Lookup returns the backend registered under id.
func Lookup(id string) (Backend, bool) { return backends.Get(id) }

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
