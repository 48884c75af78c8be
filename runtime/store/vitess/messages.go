package vitess

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Messages = (*Store)(nil)

// The SMS domain's table.
var _ = addTables("messages",
	table{
		name: "sms", column: "message_id", vindex: "xxhash",
		doc: `
SMS records have no user (the API takes a phone number), and every read
and write is by message_id, so they are sharded by xxhash of message_id.
(By phone would put a phone's messages together, but no query asks for
them, and a bulk send to one number would heat one shard.)
`,
		ddl: `
CREATE TABLE IF NOT EXISTS sms (
  message_id VARBINARY(64) NOT NULL,
  phone      VARBINARY(32) NOT NULL,
  template   VARBINARY(64) NOT NULL,
  params     BLOB          NOT NULL, -- JSON object, null when none
  text       BLOB          NOT NULL,
  status     VARBINARY(32) NOT NULL,
  attempts   INT           NOT NULL,
  last_error BLOB          NOT NULL,
  created_at DATETIME(6)   NOT NULL,
  updated_at DATETIME(6)   NOT NULL,
  PRIMARY KEY (message_id)
) ENGINE=InnoDB`,
	},
)

const smsCols = "message_id, phone, template, params, text, status, attempts, last_error, created_at, updated_at"

// PutSMS stores a new message unless its message_id exists (INSERT IGNORE
// on the message's shard); created reports whether this call stored it.
func (s *Store) PutSMS(ctx context.Context, m store.SMS) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if m.MessageID == "" {
		return false, fmt.Errorf("vitess: put sms: no message_id")
	}
	op := fmt.Sprintf("put sms %q", m.MessageID)
	params, err := json.Marshal(m.Params)
	if err != nil {
		return false, fmt.Errorf("vitess: %s: encode params: %w", op, err)
	}
	n, err := s.exec(ctx, valuesSQL("INSERT IGNORE INTO sms ("+smsCols+")", 10, 1),
		m.MessageID, m.Phone, m.Template, string(params), m.Text, m.Status, m.Attempts, m.LastError, m.CreatedAt, m.UpdatedAt)
	if err != nil {
		return false, s.fail(op, err)
	}
	return n == 1, nil
}

// UpdateSMS sets status, attempts, last error and rendered text of a stored
// message, and its updated_at when m carries one; the other fields keep
// their stored values. It returns store.ErrNotFound if the message is absent.
func (s *Store) UpdateSMS(ctx context.Context, m store.SMS) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	op := fmt.Sprintf("update sms %q", m.MessageID)
	var updated any // NULL keeps the stored value
	if !m.UpdatedAt.IsZero() {
		updated = m.UpdatedAt
	}
	n, err := s.exec(ctx, "UPDATE sms SET status = ?, attempts = ?, last_error = ?, text = ?, updated_at = COALESCE(?, updated_at)"+
		" WHERE message_id = ?", m.Status, m.Attempts, m.LastError, m.Text, updated, m.MessageID)
	if err != nil {
		return s.fail(op, err)
	}
	if n > 0 {
		return nil
	}
	// MySQL counts changed rows: 0 is also an update to the same values.
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1 FROM sms WHERE message_id = ?", m.MessageID).Scan(&one); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// GetSMS returns the message, or store.ErrNotFound.
func (s *Store) GetSMS(ctx context.Context, messageID string) (store.SMS, error) {
	if err := s.check(ctx); err != nil {
		return store.SMS{}, err
	}
	op := fmt.Sprintf("get sms %q", messageID)
	var m store.SMS
	var params string
	err := s.db.QueryRowContext(ctx, "SELECT "+smsCols+" FROM sms WHERE message_id = ?", messageID).Scan(
		&m.MessageID, &m.Phone, &m.Template, &params, &m.Text, &m.Status, &m.Attempts, &m.LastError, &m.CreatedAt, &m.UpdatedAt)
	if err != nil {
		return store.SMS{}, s.fail(op, err)
	}
	if err := json.Unmarshal([]byte(params), &m.Params); err != nil {
		return store.SMS{}, fmt.Errorf("vitess: %s: decode params: %w", op, err)
	}
	return m, nil
}
