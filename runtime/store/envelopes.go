package store

import (
	"context"
	"time"
)

// Envelope is a red envelope: TotalCents split into Count random shares,
// grabbed one per user.
type Envelope struct {
	EnvelopeID string    `json:"envelope_id"`
	SenderID   int64     `json:"sender_id"`
	TotalCents int64     `json:"total_cents"`
	Count      int       `json:"count"`
	CreatedAt  time.Time `json:"created_at"`
}

// Grab is one user's share of an envelope.
type Grab struct {
	EnvelopeID  string    `json:"envelope_id"`
	UserID      int64     `json:"user_id"`
	AmountCents int64     `json:"amount_cents"`
	At          time.Time `json:"at"`
}

// Envelopes is the red-envelope domain: envelopes and their grabs, both on
// the shard of the envelope id, so an envelope's grabs are one shard's
// rows. The draw itself is decided outside the store (the envelopes
// function's KV state); the store is its durable record.
type Envelopes interface {
	// PutEnvelope stores e unless its envelope_id exists (then it keeps
	// the stored one).
	PutEnvelope(ctx context.Context, e Envelope) error
	// GetEnvelope returns the envelope, or ErrNotFound.
	GetEnvelope(ctx context.Context, envelopeID string) (Envelope, error)
	// PutGrabs stores grabs, idempotent on (envelope_id, user_id): a grab
	// already stored for that pair keeps its stored values.
	PutGrabs(ctx context.Context, grabs []Grab) error
	// ListGrabs returns an envelope's grabs, oldest first (then by user).
	ListGrabs(ctx context.Context, envelopeID string) ([]Grab, error)
}
