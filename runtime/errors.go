package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/runtime/wire"
)

// Error is the one error type that crosses the platform boundary. Status and
// Msg are for the caller (HTTP status or Nats-Service-Error-Code, and a
// human sentence); Code is a snake_case machine code; Err is the cause, kept
// for the log and never sent.
type Error struct {
	Status int
	Code   string
	Msg    string
	Err    error
}

// Error formats the error for logs, cause included.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %s", e.Status, e.Code, e.Msg, e.Err.Error())
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Msg)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given status, code and formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// BadRequest returns a 400 naming the field at fault.
func BadRequest(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Msg: msg}
}

// Internal wraps an unexpected cause as a 500 whose message hides the cause.
func Internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error", Err: err}
}

// Sentinel errors of the runtime library. Wrap them with %w and test with errors.Is.
var (
	// ErrUnknownHandler means a manifest names a handler id no module registered.
	ErrUnknownHandler = errors.New("unknown handler")
	// ErrBadConfig means spec.config did not decode or validate for its handler.
	ErrBadConfig = errors.New("invalid handler config")
	// ErrNoKVBucket means a function asked for a KV bucket its manifest does not declare.
	ErrNoKVBucket = errors.New("kv bucket not declared in manifest")
	// ErrNoStream means no JetStream stream captures a subject a function
	// publishes to: its manifest does not declare it under spec.publishes.
	ErrNoStream = errors.New("no stream captures the subject")
)

// AsError converts any error into an *Error: an *Error anywhere in the chain
// is returned as is, context deadline into 504, anything else into 500.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Code: "timeout", Msg: "function timed out", Err: err}
	}
	return Internal(err)
}

// RetryAfter formats d as a Retry-After value: whole seconds, rounded up,
// at least 1.
func RetryAfter(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	return strconv.FormatInt(max(int64(s), 1), 10)
}

// ErrorFromHeaders reads the error a reply carries in its headers
// (wire.SetError, or any nats micro service), for a function that calls
// another over NATS; the gateway and the host read replies with it too. It
// returns nil when the headers carry no error.
func ErrorFromHeaders(h nats.Header) *Error {
	status, code, msg, ok := wire.GetError(h)
	if !ok {
		return nil
	}
	return &Error{Status: status, Code: code, Msg: msg}
}
