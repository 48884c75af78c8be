package vitess

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

// ID is the backend's id, --store vitess.
const ID = "vitess"

func init() { store.Register(store.Backend{ID: ID, Open: openBackend}) }

// jsonConfig is Config as the platform passes it: a JSON object, decoded
// strictly, whose fields the command line sets (the flag in each comment).
type jsonConfig struct {
	Address         string `json:"address"`           // --vtgate
	Keyspace        string `json:"keyspace"`          // --vtgate-keyspace
	MaxOpenConns    int    `json:"max_open_conns"`    // --vtgate-max-open
	MaxIdleConns    int    `json:"max_idle_conns"`    // --vtgate-max-idle
	ConnMaxLifetime string `json:"conn_max_lifetime"` // --vtgate-conn-max-lifetime, a Go duration such as "30m"
}

// openBackend opens the keyspace the config names.
func openBackend(ctx context.Context, oc store.OpenContext, config json.RawMessage) (store.Store, error) {
	var jc jsonConfig
	if err := store.DecodeConfig(config, &jc); err != nil {
		return nil, fmt.Errorf("vitess: config: %w", err)
	}
	cfg := Config{Address: jc.Address, Keyspace: jc.Keyspace, MaxOpenConns: jc.MaxOpenConns, MaxIdleConns: jc.MaxIdleConns}
	if jc.ConnMaxLifetime != "" {
		d, err := time.ParseDuration(jc.ConnMaxLifetime)
		if err != nil {
			return nil, fmt.Errorf("vitess: config: conn_max_lifetime: %w: %w", store.ErrBadConfig, err)
		}
		cfg.ConnMaxLifetime = d
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vitess: config: %w: %w", store.ErrBadConfig, err)
	}
	s, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	oc.Logger.Info("vitess store opened", "vtgate", cfg.Address, "keyspace", cmp.Or(cfg.Keyspace, DefaultKeyspace))
	return s, nil
}
