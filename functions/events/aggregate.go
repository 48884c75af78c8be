package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	goruntime "runtime"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// DefaultKVWriters is how many KV writes one batch runs at once.
const DefaultKVWriters = 32

// maxCAS bounds the compare-and-set retries of one KV mirror write.
const maxCAS = 8

// Aggregate is the events.aggregate module, triggered by the EVENTS stream
// on events.track. Per batch it parses every message (an invalid one is
// rejected, so it lands in the DLQ with the reason), turns each valid one
// into a store.EventBatch keyed by its stream sequence and applies them
// all in one store call, which skips sequences applied before: a
// redelivered message is never counted twice. It then mirrors the fresh
// totals of every item the batch touched into the ITEM_STATS bucket; a
// failed KV write is logged, not retried, since the store stays the truth
// and the next event for the item rewrites its totals.
type Aggregate struct {
	// KVWriters is how many KV writes run at once (default 32).
	KVWriters int `json:"kvWriters"`

	kv    jetstream.KeyValue
	store store.Events
	log   *slog.Logger
	// epoch tells instances of the EVENTS stream apart (see seqKey).
	epoch uint64
}

// seqBits is how many low bits of an applied-batch key hold the stream
// sequence; the bits above hold the stream's epoch.
const seqBits = 40

// seqKey is the key a message's counts are applied under: its stream
// sequence, with the low 24 bits of the stream's creation time (seconds)
// above bit 40. A stream that is deleted and created again restarts its
// sequences at 1; without the epoch its new messages would be skipped as
// "applied before". Sequences past 2^40 (a trillion messages) would need
// a wider key.
func (a *Aggregate) seqKey(seq uint64) uint64 {
	return a.epoch<<seqBits | seq&(1<<seqBits-1)
}

var (
	_ runtime.BatchHandler = (*Aggregate)(nil)
	_ runtime.Provisioner  = (*Aggregate)(nil)
	_ runtime.Validator    = (*Aggregate)(nil)
)

// Validate fills the defaults and checks the config.
func (a *Aggregate) Validate() error {
	if a.KVWriters == 0 {
		a.KVWriters = DefaultKVWriters
	}
	if a.KVWriters < 1 || a.KVWriters > 1024 {
		return fmt.Errorf("kvWriters: must be between 1 and 1024, got %d", a.KVWriters)
	}
	return nil
}

// Provision opens the stats bucket, reads the epoch of its trigger's
// stream (which the host made sure of) and keeps the store.
func (a *Aggregate) Provision(ctx context.Context, env *runtime.Env) error {
	kv, err := env.KV(BucketStats)
	if err != nil {
		return err
	}
	name := env.Function.Spec.Trigger.Stream
	st, err := env.JS.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	a.epoch = uint64(st.CachedInfo().Created.Unix()) & (1<<(64-seqBits) - 1)
	evs, err := store.As[store.Events](env.Store)
	if err != nil {
		return err
	}
	return a.setup(kv, evs, env.Logger)
}

// setup wires the dependencies; tests call it with their own.
func (a *Aggregate) setup(kv jetstream.KeyValue, st store.Events, log *slog.Logger) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if st == nil {
		return errors.New("events.aggregate needs a store")
	}
	a.kv, a.store, a.log = kv, st, log
	return nil
}

// HandleBatch counts the batch's events exactly once and mirrors the totals.
func (a *Aggregate) HandleBatch(ctx context.Context, batch []*runtime.Msg) error {
	counted := countAll(batch)
	batches := make([]store.EventBatch, 0, len(batch))
	touched := map[string]struct{}{}
	for i, m := range batch {
		if counted[i].err != nil {
			m.Reject(counted[i].err)
			continue
		}
		for id := range counted[i].items {
			touched[id] = struct{}{}
		}
		batches = append(batches, store.EventBatch{Seq: a.seqKey(m.Seq), Items: counted[i].items})
	}
	if len(batches) == 0 {
		return nil
	}
	start := time.Now()
	applied, err := a.store.ApplyEvents(ctx, batches)
	if err != nil {
		return fmt.Errorf("apply %d event batches: %w", len(batches), err)
	}
	stored := time.Since(start)
	a.mirror(ctx, touched)
	a.log.Debug("events counted", "messages", len(batches), "skipped_as_applied_before", len(batches)-applied,
		"items", len(touched), "store", stored, "mirror", time.Since(start)-stored)
	return nil
}

// counted is one message's per-item counts, or why it is invalid.
type counted struct {
	items map[string]store.Counts
	err   error
}

// countAll parses and counts every message, on all CPUs: decoding JSON is
// most of a large batch's cost.
func countAll(batch []*runtime.Msg) []counted {
	out := make([]counted, len(batch))
	runtime.ForEach(batch, goruntime.GOMAXPROCS(0), func(i int, m *runtime.Msg) {
		evs, err := Parse(m.Data)
		if err != nil {
			out[i].err = err
			return
		}
		out[i].items = make(map[string]store.Counts, len(evs))
		Count(evs, out[i].items)
	})
	return out
}

// mirror writes each touched item's store totals to KV, KVWriters at once.
// It keeps a quarter of the batch's time in reserve so a slow KV cannot
// turn a counted batch into a failed (and redelivered) one.
func (a *Aggregate) mirror(ctx context.Context, items map[string]struct{}) {
	if a.kv == nil {
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Until(dl)*3/4)
		defer cancel()
	}
	var mu sync.Mutex
	var failed []string
	var firstErr error
	runtime.ForEach(slices.Collect(maps.Keys(items)), a.KVWriters, func(_ int, id string) {
		if err := a.mirrorItem(ctx, id); err != nil {
			mu.Lock()
			failed = append(failed, id)
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	})
	if len(failed) > 0 {
		a.log.Warn("item stats not mirrored to KV", "items", len(failed), "example", failed[0], "err", firstErr)
	}
}

// mirrorItem writes the item's current totals unless KV already holds
// totals at least as high: counts only grow, so with concurrent batches
// (several replicas or hosts) an older total never overwrites a newer one.
func (a *Aggregate) mirrorItem(ctx context.Context, id string) error {
	c, err := a.store.ItemStats(ctx, id)
	if err != nil {
		return fmt.Errorf("item stats %s: %w", id, err)
	}
	val, err := json.Marshal(c)
	if err != nil {
		return err
	}
	key := StatsKey(id)
	for range maxCAS {
		e, err := a.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = a.kv.Create(ctx, key, val)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return err
		case err != nil:
			return err
		}
		var have store.Counts
		if json.Unmarshal(e.Value(), &have) == nil && covers(have, c) {
			return nil
		}
		_, err = a.kv.Update(ctx, key, val, e.Revision())
		if runtime.IsKVConflict(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("mirror %s: too many concurrent writers", key)
}

// covers reports whether have is at least c in every count.
func covers(have, c store.Counts) bool {
	return have.View >= c.View && have.Click >= c.Click && have.Cart >= c.Cart && have.Buy >= c.Buy
}
