package runtime

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/manifests"
)

func TestSubjectCovers(t *testing.T) {
	tests := []struct {
		pattern, sub string
		want         bool
	}{
		{"orders.>", "orders.submit", true},
		{"orders.>", "orders", false},
		{"orders.*", "orders.submit", true},
		{"orders.*", "orders.submit.x", false},
		{"orders.submit", "orders.submit", true},
		{"orders.submit", "orders.other", false},
		{"orders.*", "orders.>", false},
		{">", "anything.at.all", true},
		{"a.*.c", "a.b.c", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.sub, func(t *testing.T) {
			if got := SubjectCovers(tt.pattern, tt.sub); got != tt.want {
				t.Errorf("SubjectCovers = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestErrorHeadersRoundTrip(t *testing.T) {
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
			ErrorHeaders(h, tt.in)
			got := ErrorFromHeaders(h)
			if got.Status != tt.in.Status || got.Code != tt.in.Code || got.Msg != tt.in.Msg {
				t.Errorf("round trip = %+v, want %+v", got, tt.in)
			}
			if got.Err != nil {
				t.Error("cause travelled")
			}
			if (h.Get(HeaderRetryAfter) != "") != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q", h.Get(HeaderRetryAfter))
			}
		})
	}
	if ErrorFromHeaders(nats.Header{}) != nil {
		t.Error("error from empty headers")
	}
	// A foreign micro service's non-HTTP code still surfaces as an error.
	e := ErrorFromHeaders(nats.Header{HeaderServiceErrorCode: {"42"}, HeaderServiceError: {"odd"}})
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

func TestBackoffDelay(t *testing.T) {
	l := &streamLoop{backoff: []time.Duration{100 * time.Millisecond, time.Second}}
	for delivered, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: time.Second, 7: time.Second} {
		if got := l.delay(delivered); got != want {
			t.Errorf("delay(%d) = %s, want %s", delivered, got, want)
		}
	}
	l = &streamLoop{}
	for delivered := 1; delivered <= 10; delivered++ {
		base := 500 * time.Millisecond << min(delivered-1, 6)
		got := l.delay(delivered)
		if got < base/2 || got > base {
			t.Errorf("default delay(%d) = %s, want within [%s, %s]", delivered, got, base/2, base)
		}
	}
}

func TestConsumerConfig(t *testing.T) {
	c := consumerConfig("persist", "orders.submit", 5, 1000, 2, 2*time.Second, 10*time.Millisecond)
	if c.MaxDeliver != 6 {
		t.Errorf("MaxDeliver = %d, want maxDeliver+1", c.MaxDeliver)
	}
	if c.AckWait < 4*time.Second || c.MaxAckPending < 8000 {
		t.Errorf("AckWait %s MaxAckPending %d", c.AckWait, c.MaxAckPending)
	}
	c = consumerConfig("x", "", 1, 1, 1, time.Millisecond, 0)
	if c.AckWait != 5*time.Second || c.MaxAckPending != 1000 {
		t.Errorf("floors: AckWait %s MaxAckPending %d", c.AckWait, c.MaxAckPending)
	}
}

func TestNewFunctionErrors(t *testing.T) {
	if _, err := NewFunction("does.not.exist", nil); !errors.Is(err, ErrUnknownHandler) {
		t.Errorf("unknown = %v", err)
	}
}

// batchOnly is a module with HandleBatch and no Handle.
type batchOnly struct{}

func (batchOnly) HandleBatch(context.Context, []*Msg) error { return nil }

func init() { Register(Module{ID: "test.batch-only", New: func() any { return batchOnly{} }}) }

// TestCheckHandlerTrigger: a deploy is refused when the handler cannot
// serve its trigger, as the host would refuse it.
func TestCheckHandlerTrigger(t *testing.T) {
	req := &manifests.Function{Spec: manifests.Spec{Handler: "test.batch-only",
		Trigger: manifests.Trigger{Subject: "fn.x"}}}
	if err := CheckHandler(req); !errors.Is(err, ErrUnknownHandler) {
		t.Errorf("batch-only handler on a request trigger: %v", err)
	}
	stream := &manifests.Function{Spec: manifests.Spec{Handler: "test.batch-only",
		Trigger: manifests.Trigger{Stream: "S", Filter: "s.x"}}}
	if err := CheckHandler(stream); err != nil {
		t.Errorf("batch-only handler on a stream trigger: %v", err)
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
