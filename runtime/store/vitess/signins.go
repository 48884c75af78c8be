package vitess

import (
	"context"
	"fmt"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.SignIns = (*Store)(nil)

// The sign-in domain's table.
var _ = addTables("signins",
	table{
		name: "signins", column: "user_id", vindex: "hash",
		doc: `
One row per user and day, on the user's shard (hash vindex on user_id,
like orders): the primary key is what makes the first sign-in of a day
exactly one record, and the previous day's row, which the streak needs,
is on the same shard.
`,
		ddl: `
CREATE TABLE IF NOT EXISTS signins (
  user_id    BIGINT      NOT NULL,
  day        DATE        NOT NULL,
  streak     INT         NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (user_id, day)
) ENGINE=InnoDB`,
	},
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
