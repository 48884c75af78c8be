package vitess

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

var _ store.Profiles = (*Store)(nil)

// The user-centre domain's table.
var _ = addTables("profiles",
	table{
		name: "profiles", column: "user_id", vindex: "hash",
		doc: `
One row per user, on the user's shard (hash vindex on user_id, like
orders). version is the optimistic lock: the first write inserts version 1
(INSERT IGNORE on the primary key), every later write is an UPDATE ...
WHERE version = <expected>, so of concurrent writers with the same
expected version exactly one changes the row. name is UTF-8 bytes (up to
64 characters of 4 bytes).
`,
		ddl: `
CREATE TABLE IF NOT EXISTS profiles (
  user_id    BIGINT         NOT NULL,
  name       VARBINARY(256) NOT NULL,
  level      INT            NOT NULL,
  version    BIGINT         NOT NULL,
  updated_at DATETIME(6)    NOT NULL,
  PRIMARY KEY (user_id)
) ENGINE=InnoDB`,
	},
)

// GetProfile returns the user's profile, or store.ErrNotFound.
func (s *Store) GetProfile(ctx context.Context, userID int64) (store.Profile, error) {
	if err := s.check(ctx); err != nil {
		return store.Profile{}, err
	}
	var p store.Profile
	var name []byte
	err := s.db.QueryRowContext(ctx, "SELECT user_id, name, level, version, updated_at FROM profiles WHERE user_id = ?", userID).
		Scan(&p.UserID, &name, &p.Level, &p.Version, &p.UpdatedAt)
	if err != nil {
		return store.Profile{}, s.fail(fmt.Sprintf("get profile %d", userID), err)
	}
	p.Name = string(name)
	return p, nil
}

// PutProfile stores p as version expect+1 if the stored version is expect:
// an INSERT IGNORE for expect 0, a conditional UPDATE otherwise, each one
// single-row statement on the user's shard that InnoDB applies atomically.
// No row affected means another version is stored; the current row is
// read back for the caller.
func (s *Store) PutProfile(ctx context.Context, p store.Profile, expect int64) (store.Profile, error) {
	if err := s.check(ctx); err != nil {
		return store.Profile{}, err
	}
	op := fmt.Sprintf("put profile %d at version %d", p.UserID, expect)
	p.Version = expect + 1
	p.UpdatedAt = p.UpdatedAt.Truncate(time.Microsecond).UTC() // what DATETIME(6) keeps
	var n int64
	var err error
	if expect == 0 {
		n, err = s.exec(ctx, "INSERT IGNORE INTO profiles (user_id, name, level, version, updated_at) VALUES (?, ?, ?, ?, ?)",
			p.UserID, []byte(p.Name), p.Level, p.Version, p.UpdatedAt)
	} else {
		n, err = s.exec(ctx, "UPDATE profiles SET name = ?, level = ?, version = ?, updated_at = ? WHERE user_id = ? AND version = ?",
			[]byte(p.Name), p.Level, p.Version, p.UpdatedAt, p.UserID, expect)
	}
	if err != nil {
		return store.Profile{}, s.fail(op, err)
	}
	if n == 1 {
		return p, nil
	}
	cur, err := s.GetProfile(ctx, p.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		cur = store.Profile{}
	case err != nil:
		return store.Profile{}, err
	}
	return cur, fmt.Errorf("vitess: %s: found version %d: %w", op, cur.Version, store.ErrVersionConflict)
}
