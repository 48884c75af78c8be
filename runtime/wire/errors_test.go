package wire

import (
	"testing"

	"github.com/nats-io/nats.go"
)

func TestErrorRoundTrip(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		code, msg      string
		wantRetryAfter bool
	}{
		{"400", 400, "invalid_request", "items[0].qty: must be 1..999", false},
		{"429", 429, "rate_limited", "slow down", true},
		{"503", 503, "overloaded", "busy", true},
		{"500", 500, "internal", "internal error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := nats.Header{}
			SetError(h, tt.status, tt.code, tt.msg)
			status, code, msg, ok := GetError(h)
			if !ok || status != tt.status || code != tt.code || msg != tt.msg {
				t.Errorf("round trip = %d %q %q %v, want %d %q %q", status, code, msg, ok, tt.status, tt.code, tt.msg)
			}
			if (h.Get(HeaderRetryAfter) != "") != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q", h.Get(HeaderRetryAfter))
			}
		})
	}
	if _, _, _, ok := GetError(nats.Header{}); ok {
		t.Error("error from empty headers")
	}
	// A foreign micro service's non-HTTP code still surfaces as an error,
	// with a code derived from the status.
	status, code, msg, ok := GetError(nats.Header{HeaderServiceErrorCode: {"42"}, HeaderServiceError: {"odd"}})
	if !ok || status != 500 || code != "internal" || msg != "odd" {
		t.Errorf("foreign code = %d %q %q %v", status, code, msg, ok)
	}
	// A kept Retry-After is not overwritten.
	h := nats.Header{HeaderRetryAfter: {"7"}}
	SetError(h, 429, "rate_limited", "x")
	if h.Get(HeaderRetryAfter) != "7" {
		t.Errorf("Retry-After = %q, want the function's 7", h.Get(HeaderRetryAfter))
	}
}
