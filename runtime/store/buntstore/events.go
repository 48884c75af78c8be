package buntstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Events = (*Store)(nil)

// Events (store.Events) have a file of their own, stats.db: item counters
// are not per user, and one transaction there updates the counters and the
// markers of a whole call.
//
//	stats.db     c:<item_id>                Counts JSON
//	stats.db     seq:<20-digit seq>         "1", expiring after seqTTL

// seqTTL is how long an applied stream sequence is remembered. It must
// outlive any redelivery: trigger streams keep messages 72h, and a consumer
// could be stuck for a while before redelivering.
const seqTTL = 8 * 24 * time.Hour

func counterKey(item string) string { return "c:" + item }
func seqKey(seq uint64) string      { return "seq:" + pad20(seq) }

// ApplyEvents adds each batch's counts to its items' counters, skipping
// batches whose Seq was applied before (or earlier in the same call), and
// returns how many batches were new. Markers and counters change in one
// transaction on stats.db, so a batch is either fully counted and marked or
// not at all; it is durable on return.
func (s *Store) ApplyEvents(ctx context.Context, batches []store.EventBatch) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if len(batches) == 0 {
		return 0, nil
	}
	applied := 0
	err := s.stats.Update(func(tx *buntdb.Tx) error {
		sum := make(map[string]store.Counts)
		marker := &buntdb.SetOptions{Expires: true, TTL: seqTTL}
		for _, b := range batches {
			k := seqKey(b.Seq)
			if _, err := tx.Get(k); err == nil {
				continue
			} else if !isNotFound(err) {
				return err
			}
			if _, _, err := tx.Set(k, "1", marker); err != nil {
				return err
			}
			applied++
			for item, c := range b.Items {
				acc := sum[item]
				acc.Add(c)
				sum[item] = acc
			}
		}
		for item, add := range sum {
			k := counterKey(item)
			var cur store.Counts
			if v, err := tx.Get(k); err == nil {
				if err := json.Unmarshal([]byte(v), &cur); err != nil {
					return fmt.Errorf("decode %s: %w", k, err)
				}
			} else if !isNotFound(err) {
				return err
			}
			cur.Add(add)
			b, err := json.Marshal(cur)
			if err != nil {
				return err
			}
			if _, _, err := tx.Set(k, string(b), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, s.fail("apply events", err)
	}
	return applied, nil
}

// ItemStats returns an item's counters, zero when it has none.
func (s *Store) ItemStats(ctx context.Context, itemID string) (store.Counts, error) {
	var c store.Counts
	if err := s.check(ctx); err != nil {
		return c, err
	}
	var v string
	err := s.stats.View(func(tx *buntdb.Tx) (err error) {
		v, err = tx.Get(counterKey(itemID))
		return err
	})
	if isNotFound(err) {
		return c, nil
	}
	if err != nil {
		return c, s.fail(fmt.Sprintf("item stats %q", itemID), err)
	}
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return c, fmt.Errorf("buntstore: item stats %q: decode: %w", itemID, err)
	}
	return c, nil
}
