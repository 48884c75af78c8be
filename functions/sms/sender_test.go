package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// fakeProvider answers from a script and records what it was given.
type fakeProvider struct {
	mu   sync.Mutex
	errs []error // one per call; nil or past the end is success
	sent []store.SMS
}

func (p *fakeProvider) Send(_ context.Context, m store.SMS) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, m)
	if n := len(p.sent) - 1; n < len(p.errs) {
		return p.errs[n]
	}
	return nil
}

func (p *fakeProvider) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sent)
}

func queuedMsg(id string, delivered int) *runtime.Msg {
	b, _ := json.Marshal(queued{MessageID: id, Phone: "+8613800138000", Template: "verify", Params: map[string]string{"code": "4321"}})
	return &runtime.Msg{Subject: SubjectSend, Data: b, Stream: "SMS", Seq: 1, Delivered: delivered}
}

func TestSenderOutcomes(t *testing.T) {
	transient := errors.New("webhook answered 503 Service Unavailable")
	permanent := fmt.Errorf("%w: webhook answered 400 Bad Request", ErrPermanent)
	tests := []struct {
		name         string
		stored       string // status already stored; "" stores nothing
		delivered    int
		providerErr  error
		wantCalls    int
		wantSettled  bool
		wantStatus   string
		wantAttempts int
		wantLastErr  string
	}{
		{name: "sent", stored: StatusQueued, delivered: 1, wantCalls: 1, wantStatus: StatusSent, wantAttempts: 1},
		{name: "not in store yet", delivered: 1, wantCalls: 1, wantStatus: StatusSent, wantAttempts: 1},
		{name: "redelivery of a sent message", stored: StatusSent, delivered: 2, wantCalls: 0, wantStatus: StatusSent},
		{name: "retryable, attempts left", stored: StatusQueued, delivered: 2, providerErr: transient, wantCalls: 1,
			wantSettled: true, wantStatus: StatusQueued, wantAttempts: 2, wantLastErr: "503"},
		{name: "retryable on the last attempt", stored: StatusQueued, delivered: 3, providerErr: transient, wantCalls: 1,
			wantSettled: true, wantStatus: StatusDead, wantAttempts: 3, wantLastErr: "503"},
		{name: "permanent", stored: StatusQueued, delivered: 1, providerErr: permanent, wantCalls: 1,
			wantSettled: true, wantStatus: StatusFailed, wantAttempts: 1, wantLastErr: "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMemStore()
			if tt.stored != "" {
				_, _ = st.PutSMS(context.Background(), store.SMS{MessageID: "m1", Phone: "+8613800138000", Template: "verify", Status: tt.stored})
			}
			p := &fakeProvider{errs: []error{tt.providerErr}}
			var s Sender
			if err := s.setup(st, newFakeClock(time.Now()), discard(), 3, 4, p); err != nil {
				t.Fatal(err)
			}
			m := queuedMsg("m1", tt.delivered)
			if err := s.HandleBatch(context.Background(), []*runtime.Msg{m}); err != nil {
				t.Fatal(err)
			}
			if p.calls() != tt.wantCalls {
				t.Errorf("provider called %d times, want %d", p.calls(), tt.wantCalls)
			}
			if m.Settled() != tt.wantSettled {
				t.Errorf("settled = %v, want %v", m.Settled(), tt.wantSettled)
			}
			rec, err := st.GetSMS(context.Background(), "m1")
			if err != nil {
				t.Fatal(err)
			}
			if rec.Status != tt.wantStatus || (tt.wantAttempts != 0 && rec.Attempts != tt.wantAttempts) || !strings.Contains(rec.LastError, tt.wantLastErr) {
				t.Errorf("record = %+v, want status %s attempts %d error ~%q", rec, tt.wantStatus, tt.wantAttempts, tt.wantLastErr)
			}
			if tt.wantCalls == 1 && p.sent[0].Text != "Your verification code is 4321. It expires in 5 minutes." {
				t.Errorf("provider got text %q", p.sent[0].Text)
			}
			if tt.wantStatus == StatusSent && tt.wantCalls == 1 && rec.Text == "" {
				t.Error("rendered text not recorded")
			}
		})
	}
}

func TestSenderRejectsBadPayloads(t *testing.T) {
	var s Sender
	st := newMemStore()
	p := &fakeProvider{}
	if err := s.setup(st, newFakeClock(time.Now()), discard(), 3, 4, p); err != nil {
		t.Fatal(err)
	}
	batch := []*runtime.Msg{
		{Data: []byte(`not json`), Delivered: 1},
		{Data: []byte(`{"phone":"+8613800138000","template":"verify"}`), Delivered: 1},
		{Data: []byte(`{"message_id":"x","phone":"123","template":"verify"}`), Delivered: 1},
		{Data: []byte(`{"message_id":"y","phone":"+8613800138000","template":"nope"}`), Delivered: 1},
	}
	if err := s.HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	for i, m := range batch {
		if !m.Settled() {
			t.Errorf("message %d not rejected", i)
		}
	}
	if p.calls() != 0 {
		t.Errorf("provider called %d times", p.calls())
	}
	if rec, _ := st.GetSMS(context.Background(), "y"); rec.Status != StatusFailed {
		t.Errorf("unknown template: status %q, want failed", rec.Status)
	}
}

func TestWebhookProvider(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		code := 200
		fmt.Sscanf(r.URL.Query().Get("code"), "%d", &code)
		if r.URL.Query().Get("sleep") != "" {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "reason here")
	}))
	defer srv.Close()
	msg := store.SMS{MessageID: "m1", Phone: "+8613800138000", Text: "hello"}
	tests := []struct {
		name          string
		query         string
		wantErr       bool
		wantPermanent bool
	}{
		{"200", "code=200", false, false},
		{"204", "code=204", false, false},
		{"400 is permanent", "code=400", true, true},
		{"404 is permanent", "code=404", true, true},
		{"408 is retried", "code=408", true, false},
		{"429 is retried", "code=429", true, false},
		{"500 is retried", "code=500", true, false},
		{"503 is retried", "code=503", true, false},
		{"timeout is retried", "sleep=1", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := WebhookProvider{URL: srv.URL + "/send?" + tt.query, Timeout: 200 * time.Millisecond, Client: srv.Client()}
			start := time.Now()
			err := p.Send(context.Background(), msg)
			if (err != nil) != tt.wantErr || errors.Is(err, ErrPermanent) != tt.wantPermanent {
				t.Fatalf("err = %v, want error %v permanent %v", err, tt.wantErr, tt.wantPermanent)
			}
			if time.Since(start) > time.Second {
				t.Errorf("took %s, timeout not applied", time.Since(start))
			}
			if tt.wantErr && !strings.Contains(tt.query, "sleep") && !strings.Contains(err.Error(), "reason here") {
				t.Errorf("error %q lacks the response body", err)
			}
		})
	}
	if want := `{"message_id":"m1","phone":"+8613800138000","text":"hello"}`; got.Load() != want {
		t.Errorf("webhook body = %v, want %s", got.Load(), want)
	}
	// A closed port is a connection error: retried.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	err := WebhookProvider{URL: url, Timeout: time.Second, Client: &http.Client{}}.Send(context.Background(), msg)
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Errorf("connection refused: err = %v, want a retryable error", err)
	}
}
