package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
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

// Sentinel errors of the runtime. Wrap them with %w and test with errors.Is.
var (
	// ErrUnknownHandler means a manifest names a handler id no module registered.
	ErrUnknownHandler = errors.New("unknown handler")
	// ErrBadConfig means spec.config did not decode or validate for its handler.
	ErrBadConfig = errors.New("invalid handler config")
	// ErrStopped means the host or instance is draining or stopped.
	ErrStopped = errors.New("stopped")
	// ErrNoKVBucket means a function asked for a KV bucket its manifest does not declare.
	ErrNoKVBucket = errors.New("kv bucket not declared in manifest")
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

// CodeForStatus is the snake_case code used when only a status is known.
func CodeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "body_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusUnprocessableEntity:
		return "unprocessable"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusGatewayTimeout:
		return "timeout"
	}
	if status >= 500 {
		return "internal"
	}
	return "error"
}

// RetryAfter formats d as a Retry-After value: whole seconds, rounded up,
// at least 1.
func RetryAfter(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	return strconv.FormatInt(max(int64(s), 1), 10)
}

// ErrorHeaders writes e into NATS headers: the nats micro convention
// (Nats-Service-Error-Code carries the HTTP status, Nats-Service-Error the
// message) plus Surge-Error-Code for the snake_case code.
func ErrorHeaders(h nats.Header, e *Error) {
	h[HeaderServiceErrorCode] = []string{strconv.Itoa(e.Status)}
	h[HeaderServiceError] = []string{e.Msg}
	h[HeaderErrorCode] = []string{e.Code}
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		if h.Get(HeaderRetryAfter) == "" {
			h[HeaderRetryAfter] = []string{"1"}
		}
	}
}

// ErrorFromHeaders reads an error written by ErrorHeaders (or by any nats
// micro service); it returns nil when the headers carry no error.
func ErrorFromHeaders(h nats.Header) *Error {
	codeStr := h.Get(HeaderServiceErrorCode)
	if codeStr == "" {
		return nil
	}
	status, err := strconv.Atoi(codeStr)
	if err != nil || status < 400 || status > 599 {
		// A micro service may use non-HTTP codes; surface them as a 500
		// but keep the text.
		status = http.StatusInternalServerError
	}
	code := h.Get(HeaderErrorCode)
	if code == "" {
		code = CodeForStatus(status)
	}
	msg := h.Get(HeaderServiceError)
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Status: status, Code: code, Msg: msg}
}
