package buntstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.SignIns = (*Store)(nil)

// Sign-ins (store.SignIns) are one key per user and day, in the user's
// shard, next to the previous day's record the streak is computed from:
//
//	user shard   s:<u20>:<YYYY-MM-DD>       sign-in JSON
func signInKey(u20, day string) string { return "s:" + u20 + ":" + day }

// SignIn records the user's sign-in for day unless one exists, and returns
// the record and whether this call created it. The check and the insert run
// inside one write transaction on the user's shard (shared with other
// writes by group commit), and buntdb runs one writer at a time per file,
// so concurrent calls create exactly one record.
func (s *Store) SignIn(ctx context.Context, userID int64, day, prevDay string, at time.Time) (store.SignIn, bool, error) {
	var rec store.SignIn
	if err := s.check(ctx); err != nil {
		return rec, false, err
	}
	// Most calls after the first of the day find the record; answer them
	// under the shared read lock.
	switch got, err := s.GetSignIn(ctx, userID, day); {
	case err == nil:
		return got, false, nil
	case !isStoreNotFound(err):
		return rec, false, err
	}
	u20 := userKey(userID)
	key := signInKey(u20, day)
	first := false
	err := s.commits[s.userShard(userID)].do(ctx, func(tx *buntdb.Tx) error {
		if v, err := tx.Get(key); err == nil {
			return json.Unmarshal([]byte(v), &rec) // created since our read
		} else if !isNotFound(err) {
			return err
		}
		streak := 1
		if v, err := tx.Get(signInKey(u20, prevDay)); err == nil {
			var prev store.SignIn
			if err := json.Unmarshal([]byte(v), &prev); err != nil {
				return fmt.Errorf("decode %s: %w", prevDay, err)
			}
			streak = prev.Streak + 1
		} else if !isNotFound(err) {
			return err
		}
		rec = store.SignIn{UserID: userID, Day: day, Streak: streak, CreatedAt: at}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if _, _, err := tx.Set(key, string(b), nil); err != nil {
			return err
		}
		first = true
		return nil
	})
	if err != nil {
		return store.SignIn{}, false, s.fail(fmt.Sprintf("sign in %d on %s", userID, day), err)
	}
	return rec, first, nil
}

// GetSignIn returns the user's record for day, or store.ErrNotFound.
func (s *Store) GetSignIn(ctx context.Context, userID int64, day string) (store.SignIn, error) {
	var rec store.SignIn
	if err := s.check(ctx); err != nil {
		return rec, err
	}
	var v string
	err := s.shards[s.userShard(userID)].View(func(tx *buntdb.Tx) (err error) {
		v, err = tx.Get(signInKey(userKey(userID), day))
		return err
	})
	if err != nil {
		return rec, s.fail(fmt.Sprintf("get sign-in %d on %s", userID, day), err)
	}
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		return rec, fmt.Errorf("buntstore: get sign-in %d on %s: decode: %w", userID, day, err)
	}
	return rec, nil
}
