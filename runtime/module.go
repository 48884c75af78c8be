package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/surgefn/surge/internal/registry"
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

var modules registry.Of[Module]

// Register adds a module; it panics on a duplicate or empty id, as both are
// programming errors found at init.
func Register(m Module) {
	if m.New == nil {
		panic("runtime: module " + m.ID + " needs a constructor")
	}
	modules.Add("runtime: module", m.ID, m)
}

// NewFunction builds the function value for handler id with its config
// decoded strictly (unknown fields are errors) and validated.
func NewFunction(id string, config json.RawMessage) (any, error) {
	m, ok := modules.Get(id)
	if !ok {
		return nil, fmt.Errorf("%w %q (the built-in handlers are %s; or %q, for a function your own process serves over NATS)",
			ErrUnknownHandler, id, strings.Join(modules.IDs(), ", "), manifests.HandlerExternal)
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
