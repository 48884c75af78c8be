package store

import (
	"context"
	"time"
)

// Profile is a user's profile in the user centre. Version counts its
// writes: the first write makes version 1, and each later write adds one.
type Profile struct {
	UserID    int64     `json:"user_id"`
	Name      string    `json:"name"`
	Level     int       `json:"level"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Profiles is the user-centre domain: one profile per user, on the user's
// shard, written with optimistic locking.
type Profiles interface {
	// GetProfile returns the user's profile, or ErrNotFound.
	GetProfile(ctx context.Context, userID int64) (Profile, error)
	// PutProfile stores p (UserID, Name, Level, UpdatedAt) as version
	// expect+1 if the stored version is expect, 0 meaning "no profile yet",
	// and returns what it stored. The version check and the write are one
	// atomic step on the user's shard, so of concurrent calls with the
	// same expect exactly one succeeds. Otherwise it stores nothing and
	// returns the current profile (Version 0 when there is none) and an
	// error wrapping ErrVersionConflict.
	PutProfile(ctx context.Context, p Profile, expect int64) (Profile, error)
}
