package vitess

import (
	"context"
	"fmt"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Envelopes = (*Store)(nil)

// The red-envelope domain's tables.
var _ = addTables("envelopes",
	table{
		name: "envelopes", column: "envelope_id", vindex: "xxhash",
		doc: `
Red envelopes have no user key that every read has (the sender is not in
the grab or get calls), so they are sharded by xxhash of envelope_id, and
their grabs with them.
`,
		ddl: `
CREATE TABLE IF NOT EXISTS envelopes (
  envelope_id VARBINARY(64) NOT NULL,
  sender_id   BIGINT        NOT NULL,
  total_cents BIGINT        NOT NULL,
  share_count INT           NOT NULL,
  created_at  DATETIME(6)   NOT NULL,
  PRIMARY KEY (envelope_id)
) ENGINE=InnoDB`,
	},
	table{
		name: "envelope_grabs", column: "envelope_id", vindex: "xxhash",
		doc: `
One row per user and envelope, on the envelope's shard: the primary key
makes a rewritten grab (a retry, the seal that writes every grab of an
emptied envelope) an INSERT IGNORE no-op.
`,
		ddl: `
CREATE TABLE IF NOT EXISTS envelope_grabs (
  envelope_id  VARBINARY(64) NOT NULL,
  user_id      BIGINT        NOT NULL,
  amount_cents BIGINT        NOT NULL,
  grabbed_at   DATETIME(6)   NOT NULL,
  PRIMARY KEY (envelope_id, user_id)
) ENGINE=InnoDB`,
	},
)

// PutEnvelope stores e unless its envelope_id exists (INSERT IGNORE).
func (s *Store) PutEnvelope(ctx context.Context, e store.Envelope) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	_, err := s.exec(ctx, "INSERT IGNORE INTO envelopes (envelope_id, sender_id, total_cents, share_count, created_at) VALUES (?, ?, ?, ?, ?)",
		[]byte(e.EnvelopeID), e.SenderID, e.TotalCents, e.Count, e.CreatedAt)
	if err != nil {
		return s.fail(fmt.Sprintf("put envelope %q", e.EnvelopeID), err)
	}
	return nil
}

// GetEnvelope returns the envelope, or store.ErrNotFound.
func (s *Store) GetEnvelope(ctx context.Context, id string) (store.Envelope, error) {
	if err := s.check(ctx); err != nil {
		return store.Envelope{}, err
	}
	var e store.Envelope
	var eid []byte
	err := s.db.QueryRowContext(ctx, "SELECT envelope_id, sender_id, total_cents, share_count, created_at FROM envelopes WHERE envelope_id = ?", []byte(id)).
		Scan(&eid, &e.SenderID, &e.TotalCents, &e.Count, &e.CreatedAt)
	if err != nil {
		return store.Envelope{}, s.fail(fmt.Sprintf("get envelope %q", id), err)
	}
	e.EnvelopeID = string(eid)
	return e, nil
}

// PutGrabs stores grabs with multi-row INSERT IGNOREs, which vtgate splits
// by shard.
func (s *Store) PutGrabs(ctx context.Context, grabs []store.Grab) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return chunks(len(grabs), func(lo, hi int) error {
		args := make([]any, 0, 4*(hi-lo))
		for _, g := range grabs[lo:hi] {
			args = append(args, []byte(g.EnvelopeID), g.UserID, g.AmountCents, g.At)
		}
		if _, err := s.exec(ctx, valuesSQL(insertIgnore("envelope_grabs", "envelope_id, user_id, amount_cents, grabbed_at"), 4, hi-lo), args...); err != nil {
			return s.fail(fmt.Sprintf("put %d grabs", hi-lo), err)
		}
		return nil
	})
}

// ListGrabs returns an envelope's grabs, oldest first, then by user.
func (s *Store) ListGrabs(ctx context.Context, id string) ([]store.Grab, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	op := fmt.Sprintf("list grabs of %q", id)
	rows, err := s.db.QueryContext(ctx, "SELECT user_id, amount_cents, grabbed_at FROM envelope_grabs WHERE envelope_id = ? ORDER BY grabbed_at, user_id", []byte(id))
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var grabs []store.Grab
	for rows.Next() {
		g := store.Grab{EnvelopeID: id}
		if err := rows.Scan(&g.UserID, &g.AmountCents, &g.At); err != nil {
			return nil, s.fail(op, err)
		}
		grabs = append(grabs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return grabs, nil
}
