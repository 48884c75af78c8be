package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The load generator's own hot paths: what one operation costs the
// machine before the platform sees it. Run with -benchmem; allocations per
// operation should stay in the single digits.

type noopScenario struct{}

func (noopScenario) Name() string                     { return "noop" }
func (noopScenario) Setup(context.Context, int) error { return nil }
func (noopScenario) Do(context.Context, int) string   { return "" }
func (noopScenario) Close() error                     { return nil }

// BenchmarkRunnerClosedLoop is the runner's cost per operation: two clock
// reads, a histogram record, the progress counters.
func BenchmarkRunnerClosedLoop(b *testing.B) {
	b.ReportAllocs()
	if _, err := Run(context.Background(), noopScenario{}, Options{Count: int64(b.N), Concurrency: 2}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRunnerOpenLoop adds the dispatcher and the hand-off to a worker.
func BenchmarkRunnerOpenLoop(b *testing.B) {
	b.ReportAllocs()
	if _, err := Run(context.Background(), noopScenario{}, Options{Count: int64(b.N), Concurrency: 2, Rate: 1e9}); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := newHistogram()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		recordUS(h, time.Duration(i%5000)*time.Microsecond)
	}
}

func BenchmarkAppendOrder(b *testing.B) {
	g := orderGen{rnd: newRand(), base: userBase(), users: 1000, items: 3}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _, _ = g.appendOrder(buf[:0], "01JBENCHBENCHBENCHBENCHBEN")
	}
}

func BenchmarkParseAccepted(b *testing.B) {
	body := []byte(`{"order_id":"01JBENCHBENCHBENCHBENCHBEN","status":"accepted","total_cents":123456}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := parseAccepted(body); !ok {
			b.Fatal("not parsed")
		}
	}
}

// BenchmarkEchoScenario is the HTTP client side of one echo round trip
// against an in-process server (which costs its share too).
func BenchmarkEchoScenario(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf [512]byte
		n, _ := r.Body.Read(buf[:])
		_, _ = w.Write(buf[:n])
	}))
	defer srv.Close()
	sc, err := NewEcho(EchoConfig{HTTP: HTTPConfig{BaseURL: srv.URL, Timeout: 5 * time.Second}, PayloadSize: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	res, err := Run(context.Background(), sc, Options{Count: int64(b.N), Concurrency: 4})
	if err != nil {
		b.Fatal(err)
	}
	if res.Errors > 0 {
		b.Fatalf("errors: %v", res.ErrorKinds)
	}
}

// BenchmarkPlatform drives a real in-process platform with the scenarios,
// b.N operations each: with -cpuprofile it shows where the platform (and
// the load generator, in the same profile) spends its time. Not run by
// `go test` without -bench.
func BenchmarkPlatform(b *testing.B) {
	env := startPlatform(b)
	web := HTTPConfig{BaseURL: env.URL, Timeout: 5 * time.Second}
	natsURL := env.P.NATSURL()
	orders := OrdersConfig{HTTP: web, Users: 100, PayloadItems: 3, Sample: 10,
		Drain: &DrainConfig{NATSURL: natsURL, Auth: env.P.NATSAuth(), Stream: "ORDERS", Consumer: "order-persist", Timeout: time.Minute}}
	js := JSConfig{URL: natsURL, Auth: env.P.NATSAuth(), Timeout: 5 * time.Second, Subject: "orders.submit"}
	tests := []struct {
		name        string
		concurrency int
		new         func() (Scenario, error)
	}{
		{"echo", 64, func() (Scenario, error) { return NewEcho(EchoConfig{HTTP: web, PayloadSize: 64}) }},
		{"orders-http", 64, func() (Scenario, error) { return NewOrdersHTTP(orders) }},
		{"orders-nats", 256, func() (Scenario, error) { return NewOrdersNATS(js, orders) }},
		{"signin", 64, func() (Scenario, error) { return NewSignIn(SignInConfig{HTTP: web, Users: 100_000}) }},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			sc, err := tt.new()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			res, err := Run(context.Background(), sc, Options{Count: int64(b.N), Concurrency: tt.concurrency})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.Throughput, "ops/s")
			b.ReportMetric(res.Latency.P99, "p99-µs")
			if res.Errors > 0 || (res.Verify != nil && !res.Verify.Passed) {
				b.Fatalf("errors %v verify %+v", res.ErrorKinds, res.Verify)
			}
		})
	}
}
