package buntstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

func signInKey(u20, day string) string { return "s:" + u20 + ":" + day }
func smsKey(id string) string          { return "m:" + id }

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

// PutSMS stores a new message unless its message_id exists; created reports
// whether this call stored it.
func (s *Store) PutSMS(ctx context.Context, m store.SMS) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if m.MessageID == "" {
		return false, fmt.Errorf("buntstore: put sms: no message_id")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return false, fmt.Errorf("buntstore: put sms %q: encode: %w", m.MessageID, err)
	}
	created := false
	key := smsKey(m.MessageID)
	err = s.commits[s.keyShard(m.MessageID)].do(ctx, func(tx *buntdb.Tx) error {
		if _, err := tx.Get(key); err == nil {
			return nil
		} else if !isNotFound(err) {
			return err
		}
		if _, _, err := tx.Set(key, string(b), nil); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, s.fail(fmt.Sprintf("put sms %q", m.MessageID), err)
	}
	return created, nil
}

// UpdateSMS sets status, attempts, last error and rendered text of a stored
// message, and its updated_at when m carries one; the other fields keep
// their stored values. It returns store.ErrNotFound if the message is absent.
func (s *Store) UpdateSMS(ctx context.Context, m store.SMS) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	key := smsKey(m.MessageID)
	err := s.commits[s.keyShard(m.MessageID)].do(ctx, func(tx *buntdb.Tx) error {
		v, err := tx.Get(key)
		if err != nil {
			return err
		}
		var cur store.SMS
		if err := json.Unmarshal([]byte(v), &cur); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		cur.Status, cur.Attempts, cur.LastError, cur.Text = m.Status, m.Attempts, m.LastError, m.Text
		if !m.UpdatedAt.IsZero() {
			cur.UpdatedAt = m.UpdatedAt
		}
		b, err := json.Marshal(cur)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		_, _, err = tx.Set(key, string(b), nil)
		return err
	})
	if err != nil {
		return s.fail(fmt.Sprintf("update sms %q", m.MessageID), err)
	}
	return nil
}

// GetSMS returns the message, or store.ErrNotFound.
func (s *Store) GetSMS(ctx context.Context, messageID string) (store.SMS, error) {
	var m store.SMS
	if err := s.check(ctx); err != nil {
		return m, err
	}
	var v string
	err := s.shards[s.keyShard(messageID)].View(func(tx *buntdb.Tx) (err error) {
		v, err = tx.Get(smsKey(messageID))
		return err
	})
	if err != nil {
		return m, s.fail(fmt.Sprintf("get sms %q", messageID), err)
	}
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return m, fmt.Errorf("buntstore: get sms %q: decode: %w", messageID, err)
	}
	return m, nil
}
