package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/runtime/wire"
)

func TestBuildMsg(t *testing.T) {
	r := httptest.NewRequest("POST", "/v1/orders/7?x=1&y=2", strings.NewReader("{}"))
	r.Header.Set("Idempotency-Key", "k1")
	r.Header.Set("Authorization", "Bearer secret")
	r.Header.Set("Content-Type", "application/json")
	var p Params
	p.add("order_id", "7")
	m := buildMsg("fn.orders.get", r, []string{"rid"}, nil, &p, 0, []byte("{}"))
	want := map[string]string{
		wire.HeaderMethod:                   "POST",
		wire.HeaderPath:                     "/v1/orders/7",
		wire.HeaderQuery:                    "x=1&y=2",
		wire.HeaderParamPrefix + "order_id": "7",
		wire.HeaderIdempotencyKey:           "k1",
		wire.HeaderRequestID:                "rid",
		wire.HeaderContentType:              "application/json",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if m.Header.Get("Authorization") != "" {
		t.Error("Authorization must not travel to functions")
	}
	if m.Subject != "fn.orders.get" || string(m.Data) != "{}" {
		t.Errorf("msg = %s %s", m.Subject, m.Data)
	}
}

func TestWriteReply(t *testing.T) {
	w := httptest.NewRecorder()
	writeReply(w, &nats.Msg{Data: []byte(`{"ok":1}`), Header: nats.Header{
		wire.HeaderStatus: {"202"}, "Location": {"/v1/orders/1"}, "Nats-Service-Error": {"x"}, "Surge-Internal": {"y"},
	}})
	if w.Code != 202 || w.Body.String() != `{"ok":1}` || w.Header().Get("Location") != "/v1/orders/1" ||
		w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Surge-Internal") != "" {
		t.Errorf("reply = %d %v %s", w.Code, w.Header(), w.Body)
	}
}

func BenchmarkBuildMsg(b *testing.B) {
	r := httptest.NewRequest("POST", "/v1/orders", strings.NewReader("{}"))
	r.Header.Set("Content-Type", "application/json")
	body := []byte(`{"user_id":1,"items":[{"sku":"A1","qty":2,"price_cents":1999}],"currency":"CNY"}`)
	var p Params
	b.ReportAllocs()
	for b.Loop() {
		_ = buildMsg("fn.orders.accept", r, []string{"rid"}, nil, &p, 0, body)
	}
}
