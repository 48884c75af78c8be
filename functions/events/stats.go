package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Stats is the events.stats module (GET /v1/items/{item_id}/stats): an
// item's totals from the KV bucket events.aggregate keeps, or from the
// store when the bucket has none (never counted, or expired).
type Stats struct {
	kv    jetstream.KeyValue
	store store.Events
	log   *slog.Logger
	// l1 answers the hottest items (a flash sale's product page) without a
	// KV read; its TTL is a small part of the 2 s the stats may lag.
	l1 *runtime.Cache[string, store.Counts]
}

// statsL1TTL and statsL1Size bound the in-process stats cache.
const (
	statsL1TTL  = 250 * time.Millisecond
	statsL1Size = 10_000
)

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
	evs, err := store.As[store.Events](env.Store)
	if err != nil {
		return err
	}
	s.kv, s.store, s.log = kv, evs, env.Logger
	s.l1 = runtime.NewCache[string, store.Counts](statsL1TTL, statsL1Size, env.Clock)
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
		if err := runtime.DecodeJSON(req.Data, &body, ""); err != nil {
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

// lookup reads L1, then the KV mirror, falling back to the store.
func (s *Stats) lookup(ctx context.Context, id string) (c store.Counts, err error) {
	if c, ok := s.l1.Get(id); ok {
		return c, nil
	}
	defer func() {
		if err == nil {
			s.l1.Put(id, c)
		}
	}()
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
