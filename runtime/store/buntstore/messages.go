package buntstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Messages = (*Store)(nil)

// Messages (store.Messages) have no user: each is one key in the shard of
// its message id.
//
//	id shard     m:<message_id>             SMS JSON
func smsKey(id string) string { return "m:" + id }

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
