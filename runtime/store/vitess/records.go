package vitess

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

// SignIn records the user's sign-in for day unless one exists, and returns
// the record and whether this call created it. It reads day and prevDay in
// one query on the user's shard, then inserts day's row with INSERT IGNORE:
// the primary key (user_id, day) lets exactly one of any number of
// concurrent calls insert, and the others return the winner's row. Why no
// transaction is needed is in the package comment.
func (s *Store) SignIn(ctx context.Context, userID int64, day, prevDay string, at time.Time) (store.SignIn, bool, error) {
	if err := s.check(ctx); err != nil {
		return store.SignIn{}, false, err
	}
	op := fmt.Sprintf("sign in %d on %s", userID, day)
	rows, err := s.db.QueryContext(ctx, "SELECT user_id, day, streak, created_at FROM signins WHERE user_id = ? AND day IN (?, ?)",
		userID, day, prevDay)
	if err != nil {
		return store.SignIn{}, false, s.fail(op, err)
	}
	found := make(map[string]store.SignIn, 2)
	for rows.Next() {
		rec, err := scanSignIn(rows)
		if err != nil {
			_ = rows.Close()
			return store.SignIn{}, false, s.fail(op, err)
		}
		found[rec.Day] = rec
	}
	if err := rows.Err(); err != nil {
		return store.SignIn{}, false, s.fail(op, err)
	}
	if rec, ok := found[day]; ok {
		return rec, false, nil
	}
	rec := store.SignIn{UserID: userID, Day: day, Streak: 1, CreatedAt: at}
	if prev, ok := found[prevDay]; ok && prevDay != day {
		rec.Streak = prev.Streak + 1
	}
	n, err := s.exec(ctx, "INSERT IGNORE INTO signins (user_id, day, streak, created_at) VALUES (?, ?, ?, ?)",
		userID, day, rec.Streak, at)
	if err != nil {
		return store.SignIn{}, false, s.fail(op, err)
	}
	if n == 1 {
		// Return what a read returns: DATETIME(6) keeps microseconds.
		rec.CreatedAt = at.Truncate(time.Microsecond).UTC()
		return rec, true, nil
	}
	// Another call inserted the row since our read.
	rec, err = s.GetSignIn(ctx, userID, day)
	return rec, false, err
}

// GetSignIn returns the user's record for day, or store.ErrNotFound.
func (s *Store) GetSignIn(ctx context.Context, userID int64, day string) (store.SignIn, error) {
	if err := s.check(ctx); err != nil {
		return store.SignIn{}, err
	}
	row := s.db.QueryRowContext(ctx, "SELECT user_id, day, streak, created_at FROM signins WHERE user_id = ? AND day = ?", userID, day)
	rec, err := scanSignIn(row)
	if err != nil {
		return store.SignIn{}, s.fail(fmt.Sprintf("get sign-in %d on %s", userID, day), err)
	}
	return rec, nil
}

func scanSignIn(row interface{ Scan(...any) error }) (store.SignIn, error) {
	var rec store.SignIn
	var day time.Time
	if err := row.Scan(&rec.UserID, &day, &rec.Streak, &rec.CreatedAt); err != nil {
		return rec, err
	}
	rec.Day = day.Format(time.DateOnly)
	return rec, nil
}

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
