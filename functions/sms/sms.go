// Package sms is the built-in text-message service: sms.send validates a
// request, applies per-phone rate limits and queues the message on the SMS
// stream; sms.sender delivers queued messages through a Provider with
// retries, backoff and dead-lettering; sms.status reports a message's
// delivery state from the store.
//
// The HTTP contract (POST /v1/sms, GET /v1/sms/{message_id}) is fixed by
// docs/API.md section 3; the manifests are manifests/sms.yaml.
package sms

import (
	"errors"

	"github.com/surgefn/surge/runtime"
)

func init() {
	runtime.Register(runtime.Module{ID: "sms.send", New: func() any { return new(Send) }})
	runtime.Register(runtime.Module{ID: "sms.status", New: func() any { return new(Status) }})
	runtime.Register(runtime.Module{ID: "sms.sender", New: func() any { return new(Sender) }})
}

// Subject and bucket names the SMS functions share with their manifests.
const (
	// SubjectSend is the subject sms.send publishes to and sms.sender
	// consumes, captured by the SMS stream that manifests/sms.yaml declares.
	SubjectSend = "sms.send"
	// BucketLimits is the KV bucket holding the per-phone rate-limit state.
	BucketLimits = "SMS_LIMITS"
)

// Message statuses, as GET /v1/sms/{message_id} reports them.
const (
	// StatusQueued: accepted, not delivered yet (possibly between retries).
	StatusQueued = "queued"
	// StatusSent: the provider accepted the message.
	StatusSent = "sent"
	// StatusFailed: the provider refused the message; it is not retried.
	StatusFailed = "failed"
	// StatusDead: every attempt failed; the message is in the DLQ.
	StatusDead = "dead"
)

// Sentinel errors of the package; wrap with %w, test with errors.Is.
var (
	// ErrPermanent marks a delivery failure retrying cannot fix (a 4xx
	// from the webhook): the message is marked failed and dead-lettered.
	ErrPermanent = errors.New("permanent delivery failure")
	// ErrUnknownTemplate means a message names a template not in Templates.
	ErrUnknownTemplate = errors.New("unknown template")
	// ErrMissingParam means a template parameter has no value.
	ErrMissingParam = errors.New("missing template parameter")
)

// queued is the payload published on sms.send: what the sender needs to
// deliver the message even if the store lost the record.
type queued struct {
	MessageID string            `json:"message_id"`
	Phone     string            `json:"phone"`
	Template  string            `json:"template"`
	Params    map[string]string `json:"params,omitempty"`
}
