// Package registry is the id -> value table that function modules
// (runtime.Register) and store backends (store.Register) are registered in
// from init, the way Caddy registers its modules.
package registry

import (
	"slices"
	"sync"
)

// Of is a registry of values of type T by id; the zero value is empty and
// ready. It is safe for concurrent use.
type Of[T any] struct {
	mu sync.RWMutex
	m  map[string]T
}

// Add registers v under id. It panics on an empty or duplicate id: both are
// programming errors, found at init. what names the kind in the panic.
func (r *Of[T]) Add(what, id string, v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == "" {
		panic(what + " registered without an id")
	}
	if _, dup := r.m[id]; dup {
		panic(what + " registered twice: " + id)
	}
	if r.m == nil {
		r.m = map[string]T{}
	}
	r.m[id] = v
}

// Get returns the value registered under id.
func (r *Of[T]) Get(id string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.m[id]
	return v, ok
}

// IDs lists the registered ids, sorted.
func (r *Of[T]) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, 0, len(r.m))
	for id := range r.m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
