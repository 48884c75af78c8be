package bench

import (
	"strings"
	"testing"
	"time"
)

func TestScenarioConfigErrors(t *testing.T) {
	web := HTTPConfig{BaseURL: "http://127.0.0.1:1", Timeout: time.Second}
	orders := OrdersConfig{HTTP: web, Users: 10, PayloadItems: 3}
	js := JSConfig{URL: "nats://127.0.0.1:1", Timeout: time.Second, Subject: "orders.submit"}
	with := func(f func(*OrdersConfig)) OrdersConfig { o := orders; f(&o); return o }
	withJS := func(f func(*JSConfig)) JSConfig { c := js; f(&c); return c }
	tests := []struct {
		name    string
		err     error
		wantErr string // "" = valid
	}{
		{"echo ok", second(NewEcho(EchoConfig{HTTP: web, PayloadSize: 64})), ""},
		{"echo bad URL", second(NewEcho(EchoConfig{HTTP: HTTPConfig{BaseURL: "127.0.0.1:8080", Timeout: time.Second}})), "--gateway"},
		{"echo no timeout", second(NewEcho(EchoConfig{HTTP: HTTPConfig{BaseURL: "http://x"}})), "--timeout"},
		{"echo huge payload", second(NewEcho(EchoConfig{HTTP: web, PayloadSize: 2 << 20})), "--payload-size"},
		{"signin no users", second(NewSignIn(SignInConfig{HTTP: web})), "--users"},
		{"events ok", second(NewEvents(EventsConfig{HTTP: web, Batch: 1, Items: 1})), ""},
		{"events batch 0", second(NewEvents(EventsConfig{HTTP: web, Items: 1})), "--batch"},
		{"events no items", second(NewEvents(EventsConfig{HTTP: web, Batch: 1})), "--items"},
		{"orders ok", second(NewOrdersHTTP(orders)), ""},
		{"orders 101 items", second(NewOrdersHTTP(with(func(o *OrdersConfig) { o.PayloadItems = 101 }))), "--payload-items"},
		{"orders negative sample", second(NewOrdersHTTP(with(func(o *OrdersConfig) { o.Sample = -1 }))), "--sample"},
		{"orders-nats ok", second(NewOrdersNATS(js, orders)), ""},
		{"orders-nats no URL", second(NewOrdersNATS(withJS(func(c *JSConfig) { c.URL = "" }), orders)), "--nats"},
		{"orders-nats wildcard", second(NewOrdersNATS(withJS(func(c *JSConfig) { c.Subject = "orders.>" }), orders)), "--subject"},
		{"orders-nats negative inflight", second(NewOrdersNATS(withJS(func(c *JSConfig) { c.InFlight = -1 }), orders)), "--inflight"},
		{"js-raw no stream", second(NewJSRaw(js, 3)), "--stream"},
		{"js-raw no items", second(NewJSRaw(withJS(func(c *JSConfig) { c.RawStream = "R" }), 0)), "--payload-items"},
		{"baseline kind", func() error { _, err := StartBaseline(BaselineConfig{Kind: "nginx"}); return err }(), "--kind"},
		{"baseline nats-echo without NATS", func() error {
			_, err := StartBaseline(BaselineConfig{Kind: BaselineNATSEcho, HTTPAddr: "127.0.0.1:0"})
			return err
		}(), "--nats"},
	}
	for _, tt := range tests {
		switch {
		case tt.wantErr == "" && tt.err != nil:
			t.Errorf("%s: %v", tt.name, tt.err)
		case tt.wantErr != "" && (tt.err == nil || !strings.Contains(tt.err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want one naming %s", tt.name, tt.err, tt.wantErr)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestPayloadSize(t *testing.T) {
	for _, n := range []int{0, 5, 10, 64, 1000} {
		p := payload(n)
		if n >= 10 && len(p) != n {
			t.Errorf("payload(%d) is %d bytes", n, len(p))
		}
		if p[0] != '{' || p[len(p)-1] != '}' {
			t.Errorf("payload(%d) = %s", n, p)
		}
	}
}
