package store

import (
	"context"
	"time"
)

// SMS is one text message and its delivery state.
type SMS struct {
	MessageID string            `json:"message_id"`
	Phone     string            `json:"phone"`
	Template  string            `json:"template"`
	Params    map[string]string `json:"params,omitempty"`
	Text      string            `json:"text,omitempty"`
	Status    string            `json:"status"`
	Attempts  int               `json:"attempts"`
	LastError string            `json:"last_error,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// Messages is the SMS domain: text messages keyed by message_id and their
// delivery state.
type Messages interface {
	// PutSMS stores a new message unless its message_id exists; created
	// reports whether this call stored it.
	PutSMS(ctx context.Context, m SMS) (created bool, err error)
	// UpdateSMS sets status, attempts, last error and rendered text of a
	// stored message; ErrNotFound if absent.
	UpdateSMS(ctx context.Context, m SMS) error
	// GetSMS returns the message, or ErrNotFound.
	GetSMS(ctx context.Context, messageID string) (SMS, error)
}
