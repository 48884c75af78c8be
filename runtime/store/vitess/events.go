package vitess

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Events = (*Store)(nil)

// The event domain's tables: per-message counts and the applied markers.
//
// Behaviour counters are one row per (item, stream message), so applying a
// message twice is an ignored duplicate rather than a read-modify-write;
// ItemStats sums an item's rows. The event_batches markers, written after
// the counts, are what tells ApplyEvents how many messages were new.
var _ = addTables("events",
	table{
		name: "item_event_counts", column: "item_id", vindex: "xxhash",
		doc: `
Behaviour counters are per item, not per user: sharded by xxhash of
item_id (a string of up to 64 characters, 256 bytes). Each stream
message's contribution to an item is its own row, keyed (item_id, seq),
so applying a redelivered message is a no-op (INSERT IGNORE) without a
read-modify-write or a cross-shard transaction. ItemStats sums one item's
rows on its one shard.
`,
		ddl: `
CREATE TABLE IF NOT EXISTS item_event_counts (
  item_id VARBINARY(256)  NOT NULL,
  seq     BIGINT UNSIGNED NOT NULL,
  views   BIGINT          NOT NULL,
  clicks  BIGINT          NOT NULL,
  carts   BIGINT          NOT NULL,
  buys    BIGINT          NOT NULL,
  PRIMARY KEY (item_id, seq)
) ENGINE=InnoDB`,
	},
	table{
		name: "event_batches", column: "seq", vindex: "hash",
		doc: `
One marker per applied stream message, written after its counts rows:
INSERT IGNORE of the markers tells ApplyEvents how many messages were
new. Sharded by the hash vindex on seq: seq is an integer, and hash (a
bijective scramble of the 64-bit value) spreads consecutive sequences
over all shards. applied_at lets an operator prune markers older than
the streams' max age (72h), which can no longer be redelivered.
`,
		ddl: `
CREATE TABLE IF NOT EXISTS event_batches (
  seq        BIGINT UNSIGNED NOT NULL,
  applied_at DATETIME(6)     NOT NULL,
  PRIMARY KEY (seq)
) ENGINE=InnoDB`,
	},
)

// ApplyEvents adds each batch's counts to its items' counters, skipping
// batches whose Seq was applied before (or earlier in the same call), and
// returns how many batches were new. It inserts one item_event_counts row
// per (item, seq) and then one event_batches marker per seq, both with
// INSERT IGNORE; the markers it inserted are the batches it applied. The
// counts go first so that a marker always means complete counts: a failure
// between the two leaves counts without a marker, and the redelivery adds
// the marker and reports the batch then. Durable on return.
func (s *Store) ApplyEvents(ctx context.Context, batches []store.EventBatch) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	type countRow struct {
		item string
		seq  uint64
		c    store.Counts
	}
	var rows []countRow
	var seqs []uint64
	seen := make(map[uint64]struct{}, len(batches))
	for _, b := range batches {
		if _, dup := seen[b.Seq]; dup {
			continue // the first batch of a seq wins, as across calls
		}
		seen[b.Seq] = struct{}{}
		seqs = append(seqs, b.Seq)
		items := make([]string, 0, len(b.Items))
		for item := range b.Items {
			items = append(items, item)
		}
		slices.Sort(items) // the same statement text for the same batch
		for _, item := range items {
			rows = append(rows, countRow{item: item, seq: b.Seq, c: b.Items[item]})
		}
	}
	if len(seqs) == 0 {
		return 0, nil
	}
	err := chunks(len(rows), func(lo, hi int) error {
		args := make([]any, 0, 6*(hi-lo))
		for _, r := range rows[lo:hi] {
			args = append(args, r.item, r.seq, r.c.View, r.c.Click, r.c.Cart, r.c.Buy)
		}
		_, err := s.exec(ctx, valuesSQL(insertIgnore("item_event_counts", "item_id, seq, views, clicks, carts, buys"), 6, hi-lo), args...)
		return err
	})
	if err != nil {
		return 0, s.fail("apply events: counts", err)
	}
	applied := 0
	now := time.Now()
	err = chunks(len(seqs), func(lo, hi int) error {
		args := make([]any, 0, 2*(hi-lo))
		for _, seq := range seqs[lo:hi] {
			args = append(args, seq, now)
		}
		n, err := s.exec(ctx, valuesSQL(insertIgnore("event_batches", "seq, applied_at"), 2, hi-lo), args...)
		applied += int(n)
		return err
	})
	if err != nil {
		return 0, s.fail("apply events: markers", err)
	}
	return applied, nil
}

// ItemStats returns an item's counters (zero when it has none): the sum of
// its rows, on its one shard. The cost grows with the number of stream
// messages that counted the item.
func (s *Store) ItemStats(ctx context.Context, itemID string) (store.Counts, error) {
	if err := s.check(ctx); err != nil {
		return store.Counts{}, err
	}
	var c store.Counts
	err := s.db.QueryRowContext(ctx, "SELECT CAST(COALESCE(SUM(views), 0) AS SIGNED), CAST(COALESCE(SUM(clicks), 0) AS SIGNED),"+
		" CAST(COALESCE(SUM(carts), 0) AS SIGNED), CAST(COALESCE(SUM(buys), 0) AS SIGNED)"+
		" FROM item_event_counts WHERE item_id = ?", itemID).Scan(&c.View, &c.Click, &c.Cart, &c.Buy)
	if err != nil {
		return store.Counts{}, s.fail(fmt.Sprintf("item stats %q", itemID), err)
	}
	return c, nil
}
