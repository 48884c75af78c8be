package buntstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Profiles = (*Store)(nil)

// Profiles (store.Profiles) are one key per user, in the user's shard:
//
//	user shard   p:<u20>                    profile JSON
func profileKey(userID int64) string { return "p:" + userKey(userID) }

// GetProfile returns the user's profile, or store.ErrNotFound.
func (s *Store) GetProfile(ctx context.Context, userID int64) (store.Profile, error) {
	var p store.Profile
	if err := s.check(ctx); err != nil {
		return p, err
	}
	var v string
	err := s.shards[s.userShard(userID)].View(func(tx *buntdb.Tx) (err error) {
		v, err = tx.Get(profileKey(userID))
		return err
	})
	if err != nil {
		return p, s.fail(fmt.Sprintf("get profile %d", userID), err)
	}
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return p, fmt.Errorf("buntstore: get profile %d: decode: %w", userID, err)
	}
	return p, nil
}

// PutProfile stores p as version expect+1 if the stored version is
// expect. The version check and the write run in one write transaction on
// the user's shard, and buntdb runs one writer at a time per file, so of
// concurrent calls with the same expect exactly one succeeds.
func (s *Store) PutProfile(ctx context.Context, p store.Profile, expect int64) (store.Profile, error) {
	if err := s.check(ctx); err != nil {
		return store.Profile{}, err
	}
	key := profileKey(p.UserID)
	var cur store.Profile
	conflict := false
	err := s.commits[s.userShard(p.UserID)].do(ctx, func(tx *buntdb.Tx) error {
		cur, conflict = store.Profile{}, false // do may retry the closure
		switch v, err := tx.Get(key); {
		case err == nil:
			if err := json.Unmarshal([]byte(v), &cur); err != nil {
				return fmt.Errorf("decode: %w", err)
			}
		case !isNotFound(err):
			return err
		}
		if cur.Version != expect {
			conflict = true
			return nil
		}
		p.Version = expect + 1
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		_, _, err = tx.Set(key, string(b), nil)
		return err
	})
	op := fmt.Sprintf("put profile %d at version %d", p.UserID, expect)
	if err != nil {
		return store.Profile{}, s.fail(op, err)
	}
	if conflict {
		return cur, fmt.Errorf("buntstore: %s: found version %d: %w", op, cur.Version, store.ErrVersionConflict)
	}
	return p, nil
}
