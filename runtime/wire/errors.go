package wire

import (
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go"
)

// SetError writes an error into the headers of a NATS reply: the nats micro
// convention (Nats-Service-Error-Code carries the HTTP status,
// Nats-Service-Error the message) plus Surge-Error-Code for the snake_case
// code. A 429 or 503 also gets Retry-After: 1 unless it has one.
func SetError(h nats.Header, status int, code, msg string) {
	h[HeaderServiceErrorCode] = []string{strconv.Itoa(status)}
	h[HeaderServiceError] = []string{msg}
	h[HeaderErrorCode] = []string{code}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if h.Get(HeaderRetryAfter) == "" {
			h[HeaderRetryAfter] = []string{"1"}
		}
	}
}

// GetError reads an error written by SetError, or by any nats micro
// service; ok is false when the headers carry no error. A status that is
// not an HTTP error status becomes 500 with the message kept, a missing
// code comes from CodeForStatus and a missing message from the status text.
func GetError(h nats.Header) (status int, code, msg string, ok bool) {
	codeStr := h.Get(HeaderServiceErrorCode)
	if codeStr == "" {
		return 0, "", "", false
	}
	status, err := strconv.Atoi(codeStr)
	if err != nil || status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	code = h.Get(HeaderErrorCode)
	if code == "" {
		code = CodeForStatus(status)
	}
	msg = h.Get(HeaderServiceError)
	if msg == "" {
		msg = http.StatusText(status)
	}
	return status, code, msg, true
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
