package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/surgefn/surge/manifests"
)

// Module is a built-in function: an id manifests refer to in spec.handler,
// and a constructor returning a fresh value that implements Handler,
// BatchHandler or both. spec.config is decoded into that value (strictly)
// before Provision.
type Module struct {
	ID  string
	New func() any
}

// Provisioner is implemented by functions that set themselves up (open KV
// buckets, read config) before serving.
type Provisioner interface {
	Provision(ctx context.Context, env *Env) error
}

// Validator is implemented by functions that check their config.
type Validator interface {
	Validate() error
}

// CleanerUpper is implemented by functions that release resources when an
// instance stops.
type CleanerUpper interface {
	Cleanup() error
}

var (
	modulesMu sync.RWMutex
	modules   = map[string]Module{}
)

// Register adds a module; it panics on a duplicate or empty id, as both are
// programming errors found at init.
func Register(m Module) {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if m.ID == "" || m.New == nil {
		panic("runtime: module needs an ID and a constructor")
	}
	if _, dup := modules[m.ID]; dup {
		panic("runtime: module registered twice: " + m.ID)
	}
	modules[m.ID] = m
}

// lookupModule returns the module registered under id.
func lookupModule(id string) (Module, bool) {
	modulesMu.RLock()
	defer modulesMu.RUnlock()
	m, ok := modules[id]
	return m, ok
}

// moduleIDs lists the registered module ids, sorted.
func moduleIDs() []string {
	modulesMu.RLock()
	defer modulesMu.RUnlock()
	ids := make([]string, 0, len(modules))
	for id := range modules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// NewFunction builds the function value for handler id with its config
// decoded strictly (unknown fields are errors) and validated.
func NewFunction(id string, config json.RawMessage) (any, error) {
	m, ok := lookupModule(id)
	if !ok {
		return nil, fmt.Errorf("%w %q (the built-in handlers are %s; or %q, for a function your own process serves over NATS)",
			ErrUnknownHandler, id, strings.Join(moduleIDs(), ", "), manifests.HandlerExternal)
	}
	v := m.New()
	if len(bytes.TrimSpace(config)) > 0 && !bytes.Equal(bytes.TrimSpace(config), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(config))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return nil, fmt.Errorf("%w: spec.config: %w", ErrBadConfig, err)
		}
	}
	if val, ok := v.(Validator); ok {
		if err := val.Validate(); err != nil {
			return nil, fmt.Errorf("%w: spec.config: %w", ErrBadConfig, err)
		}
	}
	_, isH := v.(Handler)
	_, isB := v.(BatchHandler)
	if !isH && !isB {
		return nil, fmt.Errorf("%w: module %q implements neither Handler nor BatchHandler", ErrUnknownHandler, id)
	}
	return v, nil
}
