package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime"
)

// sendFixture is a Send wired to a real JetStream (KV bucket, SMS stream),
// an in-memory store and a fake clock.
type sendFixture struct {
	s     *Send
	st    *memStore
	clock *fakeClock
	js    jetstream.JetStream
}

func newSendFixture(t *testing.T, cfg Send, start time.Time) *sendFixture {
	t.Helper()
	_, js := testenv.JetStream(t)
	testenv.Streams(t, js, "sms.yaml", "sms-send")
	f := &sendFixture{s: &cfg, st: newMemStore(), clock: newFakeClock(start), js: js}
	if err := f.s.setup(newBucket(t, js, BucketLimits), js, f.st, f.clock, discard()); err != nil {
		t.Fatal(err)
	}
	return f
}

// call sends POST /v1/sms for phone and returns status, Retry-After and body.
func (f *sendFixture) call(t *testing.T, phone string) (int, string, []byte) {
	t.Helper()
	req := runtime.NewRequest("fn.sms.send", fmt.Appendf(nil, `{"phone":%q,"template":"verify","params":{"code":"123456"}}`, phone), nil)
	err := f.s.Handle(context.Background(), req)
	status, body, hdr := req.Response()
	if err != nil {
		e := runtime.AsError(err)
		if e.Status >= 500 {
			t.Fatalf("unexpected error: %v", err)
		}
		return e.Status, hdr.Get(runtime.HeaderRetryAfter), []byte(e.Code)
	}
	return status, hdr.Get(runtime.HeaderRetryAfter), body
}

func TestSendQueuesMessage(t *testing.T) {
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	f := newSendFixture(t, Send{}, start)
	status, _, body := f.call(t, "+8613800138000")
	if status != http.StatusAccepted {
		t.Fatalf("status = %d %s", status, body)
	}
	var resp sendResponse
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.MessageID) != 26 {
		t.Fatalf("body = %s (%v)", body, err)
	}
	rec, err := f.st.GetSMS(context.Background(), resp.MessageID)
	if err != nil || rec.Status != StatusQueued || rec.Phone != "+8613800138000" || rec.Params["code"] != "123456" || !rec.CreatedAt.Equal(start) {
		t.Fatalf("stored = %+v, %v", rec, err)
	}
	// Queued on the stream, de-duplicated by message id.
	name, _ := f.js.StreamNameBySubject(context.Background(), SubjectSend)
	s, _ := f.js.Stream(context.Background(), name)
	m, err := s.GetLastMsgForSubject(context.Background(), SubjectSend)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(runtime.HeaderMsgID) != resp.MessageID {
		t.Errorf("Nats-Msg-Id = %q, want %q", m.Header.Get(runtime.HeaderMsgID), resp.MessageID)
	}
	var q queued
	if err := json.Unmarshal(m.Data, &q); err != nil || q.MessageID != resp.MessageID || q.Template != "verify" {
		t.Errorf("queued payload = %s", m.Data)
	}
}

func TestSendStoreFailureIs500(t *testing.T) {
	f := newSendFixture(t, Send{}, time.Now())
	f.st.failPut = errBoom
	req := runtime.NewRequest("fn.sms.send", []byte(`{"phone":"+8613800138000","template":"verify","params":{"code":"1234"}}`), nil)
	err := f.s.Handle(context.Background(), req)
	if e := runtime.AsError(err); e == nil || e.Status != 500 {
		t.Fatalf("err = %v, want a 500", err)
	}
}

func TestRateLimitPerMinute(t *testing.T) {
	start := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	f := newSendFixture(t, Send{}, start)
	const phone = "+8613800138000"
	if st, _, b := f.call(t, phone); st != 202 {
		t.Fatalf("first = %d %s", st, b)
	}
	steps := []struct {
		name           string
		advance        time.Duration
		wantStatus     int
		wantRetryAfter string
	}{
		{"immediately again", 0, 429, "60"},
		{"after 10s", 10 * time.Second, 429, "50"},
		{"after 59.5s rounds up", 49500 * time.Millisecond, 429, "1"},
		{"after 60s", 500 * time.Millisecond, 202, ""},
		{"right after the second", time.Second, 429, "59"},
	}
	for _, s := range steps {
		f.clock.Add(s.advance)
		st, ra, body := f.call(t, phone)
		if st != s.wantStatus || ra != s.wantRetryAfter {
			t.Fatalf("%s: status %d Retry-After %q (%s), want %d %q", s.name, st, ra, body, s.wantStatus, s.wantRetryAfter)
		}
		if st == 429 && string(body) != "rate_limited" {
			t.Errorf("%s: code %s", s.name, body)
		}
	}
	// Another phone is not affected.
	if st, _, _ := f.call(t, "+8613800138001"); st != 202 {
		t.Errorf("other phone = %d", st)
	}
}

func TestRateLimitPerDay(t *testing.T) {
	start := time.Date(2025, 3, 1, 22, 0, 0, 0, time.UTC)
	f := newSendFixture(t, Send{}, start)
	const phone = "+14155550100"
	for i := range 10 {
		if st, ra, b := f.call(t, phone); st != 202 {
			t.Fatalf("send %d = %d %s (Retry-After %s)", i+1, st, b, ra)
		}
		f.clock.Add(61 * time.Second)
	}
	// 22:10:10: the 11th is refused until midnight, 1h49m50s away.
	st, ra, _ := f.call(t, phone)
	if st != 429 || ra != fmt.Sprint(int((time.Hour+49*time.Minute+50*time.Second).Seconds())) {
		t.Fatalf("11th = %d Retry-After %q", st, ra)
	}
	f.clock.Add(time.Hour)
	if st, _, _ := f.call(t, phone); st != 429 {
		t.Fatalf("an hour later, same day = %d", st)
	}
	// The day changes: allowed again.
	f.clock.Add(50 * time.Minute)
	if st, ra, b := f.call(t, phone); st != 202 {
		t.Fatalf("next day = %d %s (Retry-After %s)", st, b, ra)
	}
}

func TestRateLimitConfigurable(t *testing.T) {
	// Shanghai time: the day starts at 16:00 UTC.
	start := time.Date(2025, 3, 1, 15, 0, 0, 0, time.UTC)
	f := newSendFixture(t, Send{Window: 10 * 1e9, PerWindow: 2, PerDay: 3, TimeZone: "Asia/Shanghai"}, start)
	const phone = "+8613800138000"
	want := []struct {
		advance time.Duration
		status  int
		ra      string
	}{
		{0, 202, ""},
		{time.Second, 202, ""},
		{time.Second, 429, "8"}, // two in the window; the first leaves it at +10s
		{8 * time.Second, 202, ""},
		{20 * time.Second, 429, "3570"}, // three today; Shanghai midnight is 16:00 UTC
		{time.Hour, 202, ""},
	}
	for i, w := range want {
		f.clock.Add(w.advance)
		if st, ra, b := f.call(t, phone); st != w.status || ra != w.ra {
			t.Fatalf("step %d: %d Retry-After %q (%s), want %d %q", i, st, ra, b, w.status, w.ra)
		}
	}
}

func TestRateLimitConcurrentSends(t *testing.T) {
	f := newSendFixture(t, Send{}, time.Now())
	const n = 24
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, ra, b := f.call(t, "+8613800138000")
			switch st {
			case 202:
				ok.Add(1)
			case 429:
				if ra == "" {
					t.Error("429 without Retry-After")
				}
				limited.Add(1)
			default:
				t.Errorf("status %d %s", st, b)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || limited.Load() != n-1 {
		t.Fatalf("%d passed, %d limited; want exactly 1 to pass", ok.Load(), limited.Load())
	}
}

func TestRateLimitConcurrentLastDaySlot(t *testing.T) {
	// A wide window so only the day counter limits: 5 per day, 20 racing.
	f := newSendFixture(t, Send{PerWindow: 1000, PerDay: 5}, time.Now())
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, _, _ := f.call(t, "+8613800138000"); st == 202 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 {
		t.Fatalf("%d passed, want exactly 5", ok.Load())
	}
}
