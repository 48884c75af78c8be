package store

import (
	"context"
	"time"
)

// SignIn is one user's sign-in on one day (YYYY-MM-DD in the platform's
// sign-in time zone). Streak counts consecutive days ending on Day.
type SignIn struct {
	UserID    int64     `json:"user_id"`
	Day       string    `json:"date"`
	Streak    int       `json:"streak"`
	CreatedAt time.Time `json:"created_at"`
}

// SignIns is the daily sign-in domain: one record per user and day.
type SignIns interface {
	// SignIn records the user's sign-in for day unless one exists, and
	// returns the record and whether this call created it. Streak is the
	// streak of prevDay (the day before) plus one, or 1. Exactly one record
	// per user and day, however many concurrent calls.
	SignIn(ctx context.Context, userID int64, day, prevDay string, at time.Time) (rec SignIn, first bool, err error)
	// GetSignIn returns the user's record for day, or ErrNotFound.
	GetSignIn(ctx context.Context, userID int64, day string) (SignIn, error)
}
