package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/runtime/wire"
)

func TestErrorFromHeaders(t *testing.T) {
	tests := []struct {
		name           string
		in             *Error
		wantRetryAfter bool
	}{
		{"400", BadRequest("items[0].qty", "must be 1..999"), false},
		{"429", Errorf(429, "rate_limited", "slow down"), true},
		{"503", Errorf(503, "overloaded", "busy"), true},
		{"500 hides cause", Internal(errors.New("db password wrong")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := nats.Header{}
			wire.SetError(h, tt.in.Status, tt.in.Code, tt.in.Msg)
			got := ErrorFromHeaders(h)
			if got.Status != tt.in.Status || got.Code != tt.in.Code || got.Msg != tt.in.Msg {
				t.Errorf("round trip = %+v, want %+v", got, tt.in)
			}
			if got.Err != nil {
				t.Error("cause travelled")
			}
			if (h.Get(wire.HeaderRetryAfter) != "") != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q", h.Get(wire.HeaderRetryAfter))
			}
		})
	}
	if ErrorFromHeaders(nats.Header{}) != nil {
		t.Error("error from empty headers")
	}
	// A foreign micro service's non-HTTP code still surfaces as an error.
	e := ErrorFromHeaders(nats.Header{wire.HeaderServiceErrorCode: {"42"}, wire.HeaderServiceError: {"odd"}})
	if e.Status != 500 || e.Msg != "odd" {
		t.Errorf("foreign code = %+v", e)
	}
}

func TestAsError(t *testing.T) {
	if e := AsError(fmt.Errorf("wrapped: %w", context.DeadlineExceeded)); e.Status != 504 {
		t.Errorf("deadline = %d", e.Status)
	}
	inner := Errorf(422, "mismatch", "x")
	if e := AsError(fmt.Errorf("ctx: %w", inner)); e != inner {
		t.Error("wrapped *Error not found")
	}
	if e := AsError(errors.New("x")); e.Status != 500 || e.Msg != "internal error" {
		t.Errorf("plain = %+v", e)
	}
}

func TestNewFunctionErrors(t *testing.T) {
	_, err := NewFunction("does.not.exist", nil)
	if !errors.Is(err, ErrUnknownHandler) {
		t.Fatalf("unknown = %v", err)
	}
	// The message lists the built-ins as words, not a Go slice, and names
	// "external", which is a valid handler without a module.
	for _, want := range []string{`"does.not.exist"`, "example.greeter", `"external"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %s", err, want)
		}
	}
	if strings.ContainsAny(err.Error(), "[]") {
		t.Errorf("message %q prints a Go slice", err)
	}
}

func TestDecodeJSON(t *testing.T) {
	type in struct {
		N int64  `json:"n"`
		S string `json:"s"`
	}
	for _, tc := range []struct{ body, prefix, want string }{
		{`{"n":1,"s":"x"}`, "", ""},
		{` {"n":1} ` + "\n", "", ""},
		{`{"n":"1"}`, "", "n: must be a JSON number (int64), got string"},
		{`{"n":1,"x":2}`, "[3]", "[3].x: unknown field"},
		{`{"n":1}}`, "", "malformed JSON: unexpected data after the value"},
		{`{"n":1}{"n":2}`, "", "malformed JSON: unexpected data after the value"},
		{`{"n":`, "", "malformed JSON: unexpected EOF"},
	} {
		var v in
		err := DecodeJSON([]byte(tc.body), &v, tc.prefix)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.body, err)
			}
			continue
		}
		if e := AsError(err); e == nil || e.Status != 400 || e.Msg != tc.want {
			t.Errorf("%s: %v, want 400 %q", tc.body, err, tc.want)
		}
	}
}

func TestAuthorizeUser(t *testing.T) {
	tests := []struct {
		name       string
		header     []string // nil: no Surge-User-Id
		user       int64
		wantID     int64
		wantOK     bool
		wantForbid bool
	}{
		{name: "no header", user: 7},
		{name: "same user", header: []string{"7"}, user: 7, wantID: 7, wantOK: true},
		{name: "other user", header: []string{"8"}, user: 7, wantID: 8, wantOK: true, wantForbid: true},
		{name: "empty value", header: []string{""}, user: 7, wantOK: true, wantForbid: true},
		{name: "not a number", header: []string{"7a"}, user: 7, wantOK: true, wantForbid: true},
		{name: "zero", header: []string{"0"}, user: 0, wantOK: true, wantForbid: true},
		{name: "negative", header: []string{"-7"}, user: -7, wantOK: true, wantForbid: true},
		{name: "empty list", header: []string{}, user: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := nats.Header{}
			if tt.header != nil {
				h[wire.HeaderUserID] = tt.header
			}
			req := NewRequest("fn.x", nil, h)
			id, ok := req.UserID()
			if id != tt.wantID || ok != tt.wantOK {
				t.Errorf("UserID() = %d, %v, want %d, %v", id, ok, tt.wantID, tt.wantOK)
			}
			err := req.AuthorizeUser(tt.user)
			if (err != nil) != tt.wantForbid {
				t.Fatalf("AuthorizeUser(%d) = %v, want forbidden: %v", tt.user, err, tt.wantForbid)
			}
			if e := AsError(err); err != nil && (e.Status != 403 || e.Code != "forbidden") {
				t.Errorf("AuthorizeUser(%d) = %+v, want 403 forbidden", tt.user, e)
			}
		})
	}
}
