package gateway

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

func TestBuildMsg(t *testing.T) {
	r := httptest.NewRequest("POST", "/v1/orders/7?x=1&y=2", strings.NewReader("{}"))
	r.Header.Set("Idempotency-Key", "k1")
	r.Header.Set("Authorization", "Bearer secret")
	r.Header.Set("Content-Type", "application/json")
	var p Params
	p.add("order_id", "7")
	m := buildMsg("fn.orders.get", r, "rid", "", &p, 0, []byte("{}"), 0)
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

// TestBuildMsgOwnsValues: a local call's function may write to its header
// (host.Host.LocalCall): no value slice of the message is the response's
// (the request id and the trace hop the requestID middleware put there).
func TestBuildMsgOwnsValues(t *testing.T) {
	r := httptest.NewRequest("POST", "/v1/orders", strings.NewReader("{}"))
	c := echo.New().NewContext(r, httptest.NewRecorder())
	h := c.Response().Header()
	h[echo.HeaderXRequestID] = []string{"rid"}
	h[wire.HeaderTraceresponse] = []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	reqID, tp := hop(c)
	var p Params
	m := buildMsg("fn.orders.accept", r, reqID, tp, &p, 0, []byte("{}"), syncHeaders)
	for k := range m.Header {
		m.Header[k][0] = "written"
	}
	if h.Get(echo.HeaderXRequestID) != "rid" || h.Get(wire.HeaderTraceresponse) == "written" {
		t.Errorf("writing to the message's header changed the response's: %v", h)
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
		_ = buildMsg("fn.orders.accept", r, "rid", "", &p, 0, body, syncHeaders)
	}
}

// TestReadBody: a body of a declared length is read whole, a shorter one
// is 400, one declared or sent past the limit is 413, and a chunked body
// (no declared length) is read to its end within the limit.
func TestReadBody(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		length   int64
		wantBody string
		wantCode string
	}{
		{"declared", `{"a":1}`, 7, `{"a":1}`, ""},
		{"shorter than declared", `{"a"`, 7, "", "invalid_request"},
		{"declared past the limit", strings.Repeat("x", 20), 20, "", "body_too_large"},
		{"chunked", `{"b":2}`, -1, `{"b":2}`, ""},
		{"chunked past the limit", strings.Repeat("x", 20), -1, "", "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/x", strings.NewReader(tt.body))
			r.ContentLength = tt.length
			body, err := readBody(r, 16)
			if tt.wantCode != "" {
				if e := runtime.AsError(err); err == nil || e.Code != tt.wantCode {
					t.Fatalf("readBody = %q, %v; want error %s", body, err, tt.wantCode)
				}
				return
			}
			if err != nil || string(body) != tt.wantBody {
				t.Fatalf("readBody = %q, %v; want %q", body, err, tt.wantBody)
			}
		})
	}
	// A read that ends at the connection's read deadline (Config.ReadTimeout)
	// is 408 body_timeout, not 400.
	r := httptest.NewRequest("POST", "/v1/x", io.MultiReader(strings.NewReader("{"), deadlineReader{}))
	r.ContentLength = 7
	if _, err := readBody(r, 16); runtime.AsError(err).Code != "body_timeout" || runtime.AsError(err).Status != http.StatusRequestTimeout {
		t.Errorf("readBody at the read deadline = %v, want 408 body_timeout", err)
	}
	// A declared body above exactBody grows as it is read, and is read whole.
	big := strings.Repeat("x", exactBody+1)
	r = httptest.NewRequest("POST", "/v1/x", strings.NewReader(big))
	if body, err := readBody(r, 1<<20); err != nil || string(body) != big {
		t.Errorf("readBody of %d declared bytes = %d bytes, %v", len(big), len(body), err)
	}
}

// deadlineReader fails as a connection read past its deadline does.
type deadlineReader struct{}

func (deadlineReader) Read([]byte) (int, error) {
	return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
}
