package signin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantUser  int64
		wantField string
	}{
		{"ok", `{"user_id":7}`, 7, ""},
		{"zero", `{"user_id":0}`, 0, "user_id"},
		{"negative", `{"user_id":-3}`, 0, "user_id"},
		{"missing", `{}`, 0, "user_id"},
		{"string", `{"user_id":"7"}`, 0, "user_id"},
		{"float", `{"user_id":1.5}`, 0, "user_id"},
		{"unknown field", `{"user_id":1,"admin":true}`, 0, "admin"},
		{"malformed", `{"user_id":`, 0, "malformed JSON"},
		{"two objects", `{"user_id":1}{"user_id":2}`, 0, "malformed JSON"},
		{"stray brace", `{"user_id":1}}`, 0, "malformed JSON"}, // dec.More() let this through
		{"max int64", `{"user_id":9223372036854775807}`, 9223372036854775807, ""},
		{"overflow", `{"user_id":9223372036854775808}`, 0, "user_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode([]byte(tt.body))
			if tt.wantField == "" {
				if err != nil || got != tt.wantUser {
					t.Fatalf("decode = %d, %v; want %d", got, err, tt.wantUser)
				}
				return
			}
			if err == nil {
				t.Fatalf("decode = %d, want error on %s", got, tt.wantField)
			}
			if e := err.Error(); !strings.Contains(e, tt.wantField) {
				t.Errorf("error %q does not name %q", e, tt.wantField)
			}
		})
	}
}

func TestDay(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	ny, _ := time.LoadLocation("America/New_York")
	tests := []struct {
		name     string
		at       string
		loc      *time.Location
		wantDay  string
		wantPrev string
	}{
		{"utc midday", "2026-03-10T12:00:00Z", time.UTC, "2026-03-10", "2026-03-09"},
		{"utc just before midnight", "2026-03-10T23:59:59Z", time.UTC, "2026-03-10", "2026-03-09"},
		{"shanghai is already tomorrow", "2026-03-10T16:30:00Z", shanghai, "2026-03-11", "2026-03-10"},
		{"month boundary", "2026-03-01T00:00:00Z", time.UTC, "2026-03-01", "2026-02-28"},
		{"leap year", "2028-03-01T00:00:00Z", time.UTC, "2028-03-01", "2028-02-29"},
		{"year boundary", "2027-01-01T03:00:00Z", time.UTC, "2027-01-01", "2026-12-31"},
		{"dst spring forward day", "2026-03-08T12:00:00Z", ny, "2026-03-08", "2026-03-07"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, _ := time.Parse(time.RFC3339, tt.at)
			day, prev := Day(at, tt.loc)
			if day != tt.wantDay || prev != tt.wantPrev {
				t.Errorf("Day = %s, %s; want %s, %s", day, prev, tt.wantDay, tt.wantPrev)
			}
		})
	}
}

func TestValidateTimeZone(t *testing.T) {
	if err := (&SignIn{TimeZone: "Mars/Olympus"}).Validate(); err == nil {
		t.Error("unknown zone accepted")
	}
	s := &SignIn{}
	if err := s.Validate(); err != nil || s.loc != time.UTC {
		t.Errorf("default zone: %v %v", err, s.loc)
	}
}

// TestRepeatAnsweredFromL1: once a day's record is known, a repeat call is
// answered from the in-process cache; this SignIn has no KV bucket and no
// store, so reaching either would panic.
func TestRepeatAnsweredFromL1(t *testing.T) {
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	clock := testenv.NewClock(now)
	s := &SignIn{loc: time.UTC, clock: clock, today: runtime.NewCache[dayKey, int](time.Hour, 100, clock)}
	s.today.Put(dayKey{31, "2026-05-01"}, 4)
	req := runtime.NewRequest("fn.signin", []byte(`{"user_id":31}`), nil)
	if err := s.Handle(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := req.Response(); string(body) != `{"user_id":31,"date":"2026-05-01","first":false,"streak":4}` {
		t.Errorf("answer = %s", body)
	}
}
