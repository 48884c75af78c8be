package sms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	_ "github.com/surgefn/surge/functions/echo"
	"github.com/surgefn/surge/functions/sms"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/wire"
)

// manifestDir holds echo.yaml and sms.yaml, edit applied to each function.
func manifestDir(t *testing.T, edit func(fn *manifests.Function)) string {
	return testenv.ManifestsDir(t, edit, "echo.yaml", "sms.yaml")
}

type status struct {
	MessageID string `json:"message_id"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
}

func sendBody(phone string) []byte {
	return fmt.Appendf(nil, `{"phone":%q,"template":"verify","params":{"code":"123456"}}`, phone)
}

func send(t *testing.T, env *testenv.Env, phone string) string {
	t.Helper()
	r := env.Do(t, "POST", "/v1/sms", sendBody(phone))
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST /v1/sms %s = %d %s", phone, r.Status, r.Body)
	}
	var out struct {
		MessageID string `json:"message_id"`
	}
	r.JSON(t, &out)
	return out.MessageID
}

func waitStatus(t *testing.T, env *testenv.Env, id, want string, within time.Duration) status {
	t.Helper()
	var st status
	testenv.Eventually(t, within, "message "+id+" "+want, func() bool {
		r := env.Do(t, "GET", "/v1/sms/"+id, nil)
		if r.Status != 200 {
			return false
		}
		r.JSON(t, &st)
		return st.Status == want
	})
	return st
}

func TestE2ESendStatusAndRateLimit(t *testing.T) {
	start := time.Now()
	clk := testenv.NewClock(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
	env := testenv.Start(t, func(o *platform.Options) { o.Manifests = manifestDir(t, nil); o.Clock = clk })

	id := send(t, env, "+8613800138000")
	st := waitStatus(t, env, id, sms.StatusSent, 3*time.Second)
	if st.MessageID != id || st.Attempts != 1 {
		t.Errorf("status = %+v", st)
	}
	rec, err := testenv.Store[store.Messages](t, env).GetSMS(context.Background(), id)
	if err != nil || rec.Text != "Your verification code is 123456. It expires in 5 minutes." {
		t.Errorf("stored = %+v, %v", rec, err)
	}

	// Rate limit over HTTP: 429, Retry-After, the error envelope.
	clk.Add(15 * time.Second)
	r := env.Do(t, "POST", "/v1/sms", sendBody("+8613800138000"))
	if r.Status != 429 || r.Header.Get("Retry-After") != "45" || r.ErrorCode() != "rate_limited" {
		t.Fatalf("second send = %d Retry-After %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	clk.Add(45 * time.Second)
	send(t, env, "+8613800138000")

	// Validation errors name the field.
	for body, field := range map[string]string{
		`{"phone":"12345","template":"verify","params":{"code":"1"}}`:                     "phone",
		`{"phone":"+8613800138000","template":"nope","params":{}}`:                        "template",
		`{"phone":"+8613800138000","template":"verify","params":{}}`:                      "params.code",
		`{"phone":"+8613800138000","template":"verify","params":{"code":"123456"},"x":1}`: "x",
	} {
		r := env.Do(t, "POST", "/v1/sms", []byte(body))
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		r.JSON(t, &e)
		if r.Status != 400 || !strings.HasPrefix(e.Error.Message, field+": ") {
			t.Errorf("%s = %d %s, want 400 naming %s", body, r.Status, r.Body, field)
		}
	}
	if r := env.Do(t, "GET", "/v1/sms/01HZZZZZZZZZZZZZZZZZZZZZZZ", nil); r.Status != 404 || r.ErrorCode() != "message_not_found" {
		t.Errorf("unknown message = %d %s", r.Status, r.Body)
	}

	// Over NATS, the same JSON on fn.sms.send; errors as micro headers.
	msg, err := env.NC.Request("fn.sms.send", sendBody("+14155550100"), 2*time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"message_id"`) {
		t.Fatalf("NATS send = %v %s %v", err, msg.Data, msg.Header)
	}
	msg, err = env.NC.Request("fn.sms.send", sendBody("+14155550100"), 2*time.Second)
	if err != nil || msg.Header.Get("Nats-Service-Error-Code") != "429" {
		t.Errorf("NATS rate limit = %v %v", err, msg.Header)
	}
	t.Logf("took %s", time.Since(start))
}

// webhook fails on purpose, by phone number.
type webhook struct {
	mu    sync.Mutex
	calls map[string]int
}

const (
	phoneFlaky   = "+15550000001" // 503 twice, then 200
	phoneDown    = "+15550000002" // always 503
	phoneRefused = "+15550000003" // 400
	phoneSlow    = "+15550000004" // first call outlives the timeout, then 200
	phoneOK      = "+15550000005"
)

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var body struct{ MessageID, Phone, Text string }
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &body)
	w.mu.Lock()
	w.calls[body.Phone]++
	n := w.calls[body.Phone]
	w.mu.Unlock()
	switch {
	case body.Phone == phoneFlaky && n <= 2, body.Phone == phoneDown:
		http.Error(rw, "carrier unavailable", http.StatusServiceUnavailable)
	case body.Phone == phoneRefused:
		http.Error(rw, "number blocked", http.StatusBadRequest)
	case body.Phone == phoneSlow && n == 1:
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	default:
		_, _ = io.WriteString(rw, `{"ok":true}`)
	}
}

func (w *webhook) count(phone string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[phone]
}

func TestE2EWebhookRetriesAndDeadLetters(t *testing.T) {
	start := time.Now()
	hook := &webhook{calls: map[string]int{}}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	const maxDeliver = 4
	dir := manifestDir(t, func(fn *manifests.Function) {
		if fn.Metadata.Name != "sms-sender" {
			return
		}
		fn.Spec.Config = fmt.Appendf(nil, `{"provider":"webhook","url":%q,"timeout":"300ms"}`, srv.URL+"/send")
		fn.Spec.Timeout = manifests.Duration(2 * time.Second)
		fn.Spec.Retry = manifests.Retry{MaxDeliver: maxDeliver, Backoff: []manifests.Duration{
			manifests.Duration(50 * time.Millisecond), manifests.Duration(100 * time.Millisecond)}}
	})
	env := testenv.Start(t, func(o *platform.Options) { o.Manifests = dir })

	ids := map[string]string{}
	for _, p := range []string{phoneFlaky, phoneDown, phoneRefused, phoneSlow, phoneOK} {
		ids[p] = send(t, env, p)
	}
	if st := waitStatus(t, env, ids[phoneOK], sms.StatusSent, 3*time.Second); st.Attempts != 1 {
		t.Errorf("ok: attempts %d, want 1", st.Attempts)
	}
	if st := waitStatus(t, env, ids[phoneFlaky], sms.StatusSent, 3*time.Second); st.Attempts != 3 {
		t.Errorf("flaky: attempts %d, want 3 (two 503s then 200)", st.Attempts)
	}
	if st := waitStatus(t, env, ids[phoneSlow], sms.StatusSent, 3*time.Second); st.Attempts != 2 {
		t.Errorf("slow: attempts %d, want 2 (a timeout then 200)", st.Attempts)
	}
	if st := waitStatus(t, env, ids[phoneDown], sms.StatusDead, 5*time.Second); st.Attempts != maxDeliver {
		t.Errorf("down: attempts %d, want %d", st.Attempts, maxDeliver)
	}
	if st := waitStatus(t, env, ids[phoneRefused], sms.StatusFailed, 3*time.Second); st.Attempts != 1 {
		t.Errorf("refused: attempts %d, want 1", st.Attempts)
	}
	rec, _ := testenv.Store[store.Messages](t, env).GetSMS(context.Background(), ids[phoneDown])
	if !strings.Contains(rec.LastError, "503") {
		t.Errorf("down: last error %q", rec.LastError)
	}

	// Give stray retries time to show, then check counts and the DLQ.
	time.Sleep(500 * time.Millisecond)
	for phone, want := range map[string]int{phoneOK: 1, phoneFlaky: 3, phoneSlow: 2, phoneDown: maxDeliver, phoneRefused: 1} {
		if got := hook.count(phone); got != want {
			t.Errorf("webhook saw %s %d times, want %d", phone, got, want)
		}
	}
	dead := deadLetters(t, env.JS, "dlq.sms-sender")
	if len(dead) != 2 {
		t.Fatalf("DLQ holds %d messages, want 2 (down and refused): %v", len(dead), dead)
	}
	for phone, want := range map[string]struct {
		deliveries string
		err        string
	}{
		phoneDown:    {fmt.Sprint(maxDeliver), "503 Service Unavailable: carrier unavailable"},
		phoneRefused: {"1", "400 Bad Request: number blocked"},
	} {
		m, ok := dead[ids[phone]]
		if !ok {
			t.Errorf("%s not in the DLQ", phone)
			continue
		}
		if m.Header.Get(wire.HeaderDLQDeliveries) != want.deliveries || !strings.Contains(m.Header.Get(wire.HeaderDLQError), want.err) {
			t.Errorf("%s dead letter: deliveries %q error %q, want %s ~%q", phone,
				m.Header.Get(wire.HeaderDLQDeliveries), m.Header.Get(wire.HeaderDLQError), want.deliveries, want.err)
		}
	}
	t.Logf("took %s", time.Since(start))
}

// deadLetters returns the DLQ messages on subject by message id.
func deadLetters(t *testing.T, js jetstream.JetStream, subject string) map[string]*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*jetstream.RawStreamMsg{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil || m.Subject != subject {
			continue
		}
		var q struct {
			MessageID string `json:"message_id"`
		}
		_ = json.Unmarshal(m.Data, &q)
		if _, dup := out[q.MessageID]; dup {
			t.Errorf("message %s dead-lettered twice", q.MessageID)
		}
		out[q.MessageID] = m
	}
	return out
}

func TestE2EDirectPublishIsDelivered(t *testing.T) {
	env := testenv.Start(t, func(o *platform.Options) { o.Manifests = manifestDir(t, nil) })
	// A message published without sms.send (no stored record) is still
	// delivered, and a duplicate publish is de-duplicated by Nats-Msg-Id.
	payload := []byte(`{"message_id":"direct-1","phone":"+8613800138000","template":"login","params":{"code":"9876"}}`)
	for range 2 {
		if _, err := env.JS.PublishMsg(context.Background(), &nats.Msg{Subject: sms.SubjectSend, Data: payload,
			Header: nats.Header{runtime.HeaderMsgID: {"direct-1"}}}); err != nil {
			t.Fatal(err)
		}
	}
	st := waitStatus(t, env, "direct-1", sms.StatusSent, 3*time.Second)
	if st.Attempts != 1 {
		t.Errorf("attempts = %d", st.Attempts)
	}
}
