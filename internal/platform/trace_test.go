package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/wire"
)

// logLines returns the JSON log records of logs whose msg is msg.
func logLines(logs *syncBuffer, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// TestTraceparentAcrossProcesses follows one W3C trace from HTTP through
// the gateway (traceresponse), NATS headers into a function, the stream
// message the function publishes (a child span of the same trace) and the
// logs of a dead letter; an absent or malformed traceparent starts a new
// trace.
func TestTraceparentAcrossProcesses(t *testing.T) {
	logs := &syncBuffer{}
	env := testenv.Start(t, func(o *platform.Options) {
		o.Manifests = testenv.ManifestsDir(t, nil, "orders.yaml")
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00-" + traceID + "-00f067aa0ba902b7-01"
	)
	ctx := context.Background()

	t.Run("order carries the trace into ORDERS", func(t *testing.T) {
		r := env.Do(t, "POST", "/v1/orders", []byte(`{"user_id":7,"items":[{"sku":"A1","qty":1,"price_cents":100}],"currency":"CNY"}`),
			"traceparent: "+parent, "tracestate: vendor=x")
		if r.Status != 202 {
			t.Fatalf("POST /v1/orders = %d %s", r.Status, r.Body)
		}
		hop := r.Header.Get(wire.HeaderTraceresponse)
		if wire.TraceID(hop) != traceID || hop == parent || !strings.HasSuffix(hop, "-01") {
			t.Fatalf("traceresponse %q: want trace %s, a new span, flags 01", hop, traceID)
		}
		var acc struct {
			OrderID string `json:"order_id"`
		}
		r.JSON(t, &acc)
		s, err := env.JS.Stream(ctx, "ORDERS")
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetLastMsgForSubject(ctx, "orders.submit")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(m.Data, []byte(acc.OrderID)) {
			t.Fatalf("last ORDERS message is not order %s: %s", acc.OrderID, m.Data)
		}
		got := m.Header.Get(wire.HeaderTraceparent)
		if wire.TraceID(got) != traceID || got == hop || got == parent {
			t.Errorf("ORDERS message traceparent %q: want a child span of trace %s (gateway hop %s)", got, traceID, hop)
		}
	})

	t.Run("a function receives the gateway hop", func(t *testing.T) {
		env.Deploy(t, `
apiVersion: surge/v1
kind: Function
metadata: {name: traced}
spec:
  handler: external
  trigger: {subject: fn.traced}
  http: {method: POST, path: /v1/traced}
`)
		nc := env.Connect(t, functionCreds(t, env, "traced", false))
		seen := make(chan nats.Header, 4)
		sub, err := nc.QueueSubscribe("fn.traced", "traced", func(m *nats.Msg) {
			seen <- m.Header
			_ = m.Respond([]byte(`{}`))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		_ = nc.Flush()
		for _, tc := range []struct {
			name, sent string
			continued  bool
		}{
			{"valid parent", parent, true},
			{"no parent", "", false},
			{"malformed parent", "00-" + strings.ToUpper(traceID) + "-00f067aa0ba902b7-01", false},
		} {
			hdr := []string{}
			if tc.sent != "" {
				hdr = append(hdr, "traceparent: "+tc.sent, "tracestate: k=v")
			}
			r := env.Do(t, "POST", "/v1/traced", []byte(`{}`), hdr...)
			if r.Status != 200 {
				t.Fatalf("%s: POST /v1/traced = %d %s", tc.name, r.Status, r.Body)
			}
			var h nats.Header
			select {
			case h = <-seen:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the function was not called", tc.name)
			}
			hop := r.Header.Get(wire.HeaderTraceresponse)
			if got := h.Get(wire.HeaderTraceparent); got != hop || wire.TraceID(got) == "" {
				t.Errorf("%s: function got traceparent %q, the response says %q", tc.name, got, hop)
			}
			if continued := wire.TraceID(hop) == traceID; continued != tc.continued {
				t.Errorf("%s: traceresponse %q continued the caller's trace = %v, want %v", tc.name, hop, continued, tc.continued)
			}
			// tracestate goes on with a continued trace only.
			if want := map[bool]string{true: "k=v", false: ""}[tc.continued]; h.Get(wire.HeaderTracestate) != want {
				t.Errorf("%s: tracestate %q, want %q", tc.name, h.Get(wire.HeaderTracestate), want)
			}
		}
	})

	t.Run("a dead letter is logged with its trace id", func(t *testing.T) {
		env.Deploy(t, streamManifest("tracedead", `{fail: true}`, 1, "50ms"))
		testenv.Eventually(t, 2*time.Second, "stream exists", func() bool {
			_, err := env.JS.Stream(ctx, "TEST_TRACEDEAD")
			return err == nil
		})
		const deadTrace = "0af7651916cd43dd8448eb211c80319c"
		m := &nats.Msg{Subject: "test.tracedead", Data: []byte(`{}`),
			Header: nats.Header{wire.HeaderTraceparent: {"00-" + deadTrace + "-b7ad6b7169203331-01"}}}
		if _, err := env.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, "dead-lettered log line", func() bool {
			for _, rec := range logLines(logs, "dead-lettered") {
				if rec["trace_id"] == deadTrace {
					return true
				}
			}
			return false
		})
		dm, err := env.JS.Stream(ctx, wire.StreamDLQ)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dm.GetLastMsgForSubject(ctx, "dlq.tracedead")
		if err != nil {
			t.Fatal(err)
		}
		if wire.TraceID(got.Header.Get(wire.HeaderTraceparent)) != deadTrace {
			t.Errorf("the dead letter lost its traceparent: %v", got.Header)
		}
	})
}
