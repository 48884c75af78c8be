package buntstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Envelopes = (*Store)(nil)

// Envelopes (store.Envelopes) and their grabs live in the shard of the
// envelope id:
//
//	id shard     e:<envelope_id>            envelope JSON
//	id shard     g:<envelope_id>:<u20>      grab JSON
func envelopeKey(id string) string { return "e:" + id }

func grabPrefix(id string) string { return "g:" + id + ":" }

// PutEnvelope stores e unless its envelope_id exists.
func (s *Store) PutEnvelope(ctx context.Context, e store.Envelope) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if e.EnvelopeID == "" {
		return fmt.Errorf("buntstore: put envelope: no envelope_id")
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	key := envelopeKey(e.EnvelopeID)
	err = s.commits[s.keyShard(e.EnvelopeID)].do(ctx, func(tx *buntdb.Tx) error {
		if _, err := tx.Get(key); err == nil {
			return nil
		} else if !isNotFound(err) {
			return err
		}
		_, _, err := tx.Set(key, string(b), nil)
		return err
	})
	if err != nil {
		return s.fail(fmt.Sprintf("put envelope %q", e.EnvelopeID), err)
	}
	return nil
}

// GetEnvelope returns the envelope, or store.ErrNotFound.
func (s *Store) GetEnvelope(ctx context.Context, id string) (store.Envelope, error) {
	var e store.Envelope
	if err := s.check(ctx); err != nil {
		return e, err
	}
	var v string
	err := s.shards[s.keyShard(id)].View(func(tx *buntdb.Tx) (err error) {
		v, err = tx.Get(envelopeKey(id))
		return err
	})
	if err != nil {
		return e, s.fail(fmt.Sprintf("get envelope %q", id), err)
	}
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return e, fmt.Errorf("buntstore: get envelope %q: decode: %w", id, err)
	}
	return e, nil
}

// PutGrabs stores the grabs that are not stored yet, one transaction per
// envelope shard.
func (s *Store) PutGrabs(ctx context.Context, grabs []store.Grab) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	byShard := map[int][]store.Grab{}
	for _, g := range grabs {
		if g.EnvelopeID == "" {
			return fmt.Errorf("buntstore: put grabs: no envelope_id")
		}
		i := s.keyShard(g.EnvelopeID)
		byShard[i] = append(byShard[i], g)
	}
	for i, gs := range byShard {
		err := s.commits[i].do(ctx, func(tx *buntdb.Tx) error {
			for _, g := range gs {
				key := grabPrefix(g.EnvelopeID) + userKey(g.UserID)
				if _, err := tx.Get(key); err == nil {
					continue
				} else if !isNotFound(err) {
					return err
				}
				b, err := json.Marshal(g)
				if err != nil {
					return err
				}
				if _, _, err := tx.Set(key, string(b), nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return s.fail(fmt.Sprintf("put %d grabs", len(gs)), err)
		}
	}
	return nil
}

// ListGrabs returns an envelope's grabs, oldest first, then by user.
func (s *Store) ListGrabs(ctx context.Context, id string) ([]store.Grab, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var grabs []store.Grab
	var derr error
	err := s.shards[s.keyShard(id)].View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys(grabPrefix(id)+"*", func(_, v string) bool {
			var g store.Grab
			if derr = json.Unmarshal([]byte(v), &g); derr != nil {
				return false
			}
			grabs = append(grabs, g)
			return true
		})
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, s.fail(fmt.Sprintf("list grabs of %q", id), err)
	}
	slices.SortStableFunc(grabs, func(a, b store.Grab) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return cmp.Compare(a.UserID, b.UserID)
	})
	return grabs, nil
}
