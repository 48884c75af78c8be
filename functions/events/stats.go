package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Stats is the events.stats module (GET /v1/items/{item_id}/stats): an
// item's totals from the KV bucket events.aggregate keeps, or from the
// store when the bucket has none (never counted, or expired).
type Stats struct {
	kv    jetstream.KeyValue
	store store.Store
	log   *slog.Logger
}

var (
	_ runtime.Handler     = (*Stats)(nil)
	_ runtime.Provisioner = (*Stats)(nil)
)

// Provision opens the stats bucket and keeps the store.
func (s *Stats) Provision(_ context.Context, env *runtime.Env) error {
	kv, err := env.KV(BucketStats)
	if err != nil {
		return err
	}
	if env.Store == nil {
		return errors.New("events.stats needs a store")
	}
	s.kv, s.store, s.log = kv, env.Store, env.Logger
	return nil
}

// StatsResponse is the body of GET /v1/items/{item_id}/stats.
type StatsResponse struct {
	ItemID string `json:"item_id"`
	store.Counts
}

// Handle serves GET /v1/items/{item_id}/stats.
func (s *Stats) Handle(ctx context.Context, req *runtime.Request) error {
	id := req.Param("item_id")
	if id == "" && len(req.Data) > 0 {
		// Called over NATS without the gateway: the id may be in the body.
		var body struct {
			ItemID string `json:"item_id"`
		}
		if err := decodeStrict(req.Data, &body, ""); err != nil {
			return err
		}
		id = body.ItemID
	}
	if err := checkItemID(id); err != nil {
		return runtime.BadRequest("item_id", "%s", err.Error())
	}
	c, err := s.lookup(ctx, id)
	if err != nil {
		return runtime.Internal(err)
	}
	return req.RespondJSON(http.StatusOK, StatsResponse{ItemID: id, Counts: c})
}

// lookup reads the KV mirror, falling back to the store.
func (s *Stats) lookup(ctx context.Context, id string) (store.Counts, error) {
	var c store.Counts
	e, err := s.kv.Get(ctx, StatsKey(id))
	switch {
	case err == nil:
		if jerr := json.Unmarshal(e.Value(), &c); jerr == nil {
			return c, nil
		}
		s.log.Warn("corrupt item stats in KV; reading the store", "item_id", id)
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		s.log.Warn("item stats KV read failed; reading the store", "item_id", id, "err", err)
	}
	c, err = s.store.ItemStats(ctx, id)
	if err != nil {
		return c, fmt.Errorf("item stats %s: %w", id, err)
	}
	return c, nil
}
