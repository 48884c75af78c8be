package runtime

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/runtime/wire"
)

// Request is one call: the payload and headers that arrived, and the
// response the handler sets.
type Request struct {
	Subject string
	Data    []byte
	Header  nats.Header

	status  int
	resp    []byte
	respHdr nats.Header
}

// NewRequest returns a Request for data and header; the host, tests and
// adapters use it.
func NewRequest(subject string, data []byte, header nats.Header) *Request {
	if header == nil {
		header = nats.Header{}
	}
	return &Request{Subject: subject, Data: data, Header: header}
}

// Method is the HTTP method when the call came through the gateway.
func (r *Request) Method() string { return r.Header.Get(wire.HeaderMethod) }

// Param returns the route path parameter name ("" when absent).
func (r *Request) Param(name string) string { return r.Header.Get(wire.HeaderParamPrefix + name) }

// Query returns the parsed HTTP query string (empty when none).
func (r *Request) Query() url.Values {
	q, _ := url.ParseQuery(r.Header.Get(wire.HeaderQuery))
	return q
}

// Respond sets the response body, with status 200 unless SetStatus chose another.
func (r *Request) Respond(data []byte) {
	r.resp = data
	if r.status == 0 {
		r.status = http.StatusOK
	}
}

// RespondJSON marshals v as the response body with the given HTTP status.
func (r *Request) RespondJSON(status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return Internal(fmt.Errorf("marshal response: %w", err))
	}
	r.status = status
	r.resp = b
	r.SetHeader(HeaderContentType, "application/json")
	return nil
}

// SetStatus sets the HTTP status of a successful response.
func (r *Request) SetStatus(status int) { r.status = status }

// SetHeader sets a response header.
func (r *Request) SetHeader(key, value string) {
	if r.respHdr == nil {
		r.respHdr = nats.Header{}
	}
	r.respHdr[key] = []string{value}
}

// Response returns what the handler set: status (0 when it never
// responded), body and headers. The host builds the reply from it; tests
// check it.
func (r *Request) Response() (status int, data []byte, header nats.Header) {
	return r.status, r.resp, r.respHdr
}

// Msg is one stream message inside a batch.
type Msg struct {
	Subject   string
	Data      []byte
	Header    nats.Header
	Stream    string
	Seq       uint64 // stream sequence
	Delivered int    // delivery count, 1 on first delivery
	// Time is when the stream stored the message: the same on every
	// redelivery, so it is a deterministic "received at".
	Time time.Time

	failed   error
	rejected error
	result   []byte
	parts    []RejectedPart
}

// RejectedPart is one item of a message that carries several (a JSON
// array of orders, say) that its handler refused: the host dead-letters
// it on its own, naming its index, and acks the message for the rest.
type RejectedPart struct {
	// Index is the item's position in the message, from 0.
	Index int
	// Data is the item itself, the dead letter's payload.
	Data []byte
	// Err says why; a *Error's message names the field.
	Err error
}

// Fail marks the message for redelivery with the manifest's backoff (or the
// dead-letter stream once retry.maxDeliver is reached).
func (m *Msg) Fail(err error) { m.failed = err }

// Reject sends the message to the dead-letter stream now: retrying cannot help.
func (m *Msg) Reject(err error) { m.rejected = err }

// RejectPart dead-letters item index of a message that carries several,
// with data (the item) as the dead letter's payload; the message itself is
// acked when nothing else failed, so the other items count as handled.
// Parts go to the dead-letter stream before the ack: a crash in between
// redelivers the message, and the dead letters are de-duplicated.
func (m *Msg) RejectPart(index int, data []byte, err error) {
	m.parts = append(m.parts, RejectedPart{Index: index, Data: data, Err: err})
}

// RejectedParts are the items RejectPart refused, in the order it was called.
func (m *Msg) RejectedParts() []RejectedPart { return m.parts }

// SetResult records a result for async call status (GET /calls/{id}).
func (m *Msg) SetResult(b []byte) { m.result = b }

// Settled reports whether Fail or Reject was called.
func (m *Msg) Settled() bool { return m.failed != nil || m.rejected != nil }

// Outcome reports how the handler settled m: the error it passed to
// Reject, the one it passed to Fail, and the result it passed to
// SetResult. The host reads it after the batch to dead-letter, retry or
// ack m, and to record the async call's status.
func (m *Msg) Outcome() (rejected, failed error, result []byte) {
	return m.rejected, m.failed, m.result
}
