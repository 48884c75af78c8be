// Package runtime is the library surge functions are written against: the
// handler interfaces, the request and stream message types, the module
// registry, and the Env a function gets its KV buckets, store, logger and
// metrics from. The Host type runs deployed functions on NATS.
package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler serves one request of a request-triggered function. It answers
// with req.Respond or req.RespondJSON; a returned error is sent to the
// caller instead (an *Error keeps its status, anything else becomes a 500).
type Handler interface {
	Handle(ctx context.Context, req *Request) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) error

// Handle calls f, turning a panic into a 500 so the host keeps serving.
func (f HandlerFunc) Handle(ctx context.Context, req *Request) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Status: http.StatusInternalServerError, Code: "panic", Msg: "function panicked",
				Err: fmt.Errorf("panic: %v\n%s", r, debug.Stack())}
		}
	}()
	return f(ctx, req)
}

// BatchHandler serves a batch of stream messages. Returning an error fails
// every message not settled with Msg.Fail or Msg.Reject; returning nil acks
// every message not settled.
type BatchHandler interface {
	HandleBatch(ctx context.Context, batch []*Msg) error
}

// BatchHandlerFunc adapts a function to BatchHandler.
type BatchHandlerFunc func(ctx context.Context, batch []*Msg) error

// HandleBatch calls f, turning a panic into an error for the whole batch.
func (f BatchHandlerFunc) HandleBatch(ctx context.Context, batch []*Msg) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Status: http.StatusInternalServerError, Code: "panic", Msg: "function panicked",
				Err: fmt.Errorf("panic: %v\n%s", r, debug.Stack())}
		}
	}()
	return f(ctx, batch)
}

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

// NewRequest returns a Request for data and header; tests and adapters use it.
func NewRequest(subject string, data []byte, header nats.Header) *Request {
	if header == nil {
		header = nats.Header{}
	}
	return &Request{Subject: subject, Data: data, Header: header}
}

// Method is the HTTP method when the call came through the gateway.
func (r *Request) Method() string { return r.Header.Get(HeaderMethod) }

// Param returns the route path parameter name ("" when absent).
func (r *Request) Param(name string) string { return r.Header.Get(HeaderParamPrefix + name) }

// Query returns the parsed HTTP query string (empty when none).
func (r *Request) Query() url.Values {
	q, _ := url.ParseQuery(r.Header.Get(HeaderQuery))
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
// responded), body and headers.
func (r *Request) Response() (status int, data []byte, header nats.Header) {
	return r.status, r.resp, r.respHdr
}

// responseMsg builds the NATS reply for the request's outcome.
func (r *Request) responseMsg(err error) *nats.Msg {
	m := &nats.Msg{Header: r.respHdr}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	if err != nil {
		ErrorHeaders(m.Header, AsError(err))
		return m
	}
	if r.status != 0 && r.status != http.StatusOK {
		m.Header[HeaderStatus] = []string{strconv.Itoa(r.status)}
	}
	m.Data = r.resp
	return m
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
	js       jetstream.Msg // the delivery to settle (nil in tests)
}

// Fail marks the message for redelivery with the manifest's backoff (or the
// dead-letter stream once retry.maxDeliver is reached).
func (m *Msg) Fail(err error) { m.failed = err }

// Reject sends the message to the dead-letter stream now: retrying cannot help.
func (m *Msg) Reject(err error) { m.rejected = err }

// SetResult records a result for async call status (GET /calls/{id}).
func (m *Msg) SetResult(b []byte) { m.result = b }

// Settled reports whether Fail or Reject was called.
func (m *Msg) Settled() bool { return m.failed != nil || m.rejected != nil }
