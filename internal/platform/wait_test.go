package platform

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		n        int
		jitter   float64
		min, max time.Duration
	}{
		{1, 0, 125 * time.Millisecond, 125 * time.Millisecond},
		{1, 0.999, 249 * time.Millisecond, 250 * time.Millisecond},
		{2, 0.5, 375 * time.Millisecond, 375 * time.Millisecond},
		{5, 0, 2 * time.Second, 2 * time.Second},      // 4s drawn from its upper half
		{6, 0.999, 4990 * time.Millisecond, retryMax}, // 8s capped to 5s
		{1000, 0, retryMax / 2, retryMax / 2},         // no overflow
		{1000, 0.999, retryMax - 10*time.Millisecond, retryMax},
	}
	for _, tt := range tests {
		if d := retryDelay(tt.n, tt.jitter); d < tt.min || d > tt.max {
			t.Errorf("retryDelay(%d, %v) = %v, want within [%v, %v]", tt.n, tt.jitter, d, tt.min, tt.max)
		}
	}
}

func TestNATSProblem(t *testing.T) {
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
		want          string
	}{
		{"every server refused", errors.Join(errors.New("--nats nats://a:1,nats://b:2: "), nats.ErrNoServers), false,
			"connecting to nats://a:1,nats://b:2: connection refused"},
		{"authorization", errors.Join(errors.New("--nats nats://a:1,nats://b:2: "), nats.ErrAuthorization), true, ""},
		{"tls required", nats.ErrSecureConnRequired, true, ""},
		{"timeout", errors.New("--nats nats://a:1,nats://b:2: dial tcp 10.0.0.1:4222: i/o timeout"), false,
			"connecting to nats://a:1,nats://b:2: dial tcp 10.0.0.1:4222: i/o timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isPermanentNATSError(tt.err); got != tt.wantPermanent {
				t.Errorf("isPermanentNATSError(%v) = %v, want %v", tt.err, got, tt.wantPermanent)
			}
			if tt.want != "" {
				if got := natsProblem("nats://a:1,nats://b:2", tt.err); got != tt.want {
					t.Errorf("natsProblem = %q, want %q", got, tt.want)
				}
			}
		})
	}
}

// TestHandOffStalledBody: a client that declares a body during startup
// and never sends it does not hold the hand-off up (the startup server
// reads no bodies, and drains them before its answer only until its read
// timeout), and the listener then serves the gateway's answers.
func TestHandOffStalledBody(t *testing.T) {
	defer func(d time.Duration) { startupReadTimeout = d }(startupReadTimeout)
	startupReadTimeout = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := startStartup(ln, slog.New(slog.DiscardHandler), "nats")
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}")
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d during startup, want 503", resp.StatusCode)
	}
	start := time.Now()
	if err := s.handOff(context.Background()); err != nil {
		t.Fatalf("handOff: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("handOff took %s with a stalled body open, want about the read timeout", took.Round(time.Millisecond))
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }),
		ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	c := &http.Client{Timeout: 5 * time.Second}
	r, err := c.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Body.Close()
	if r.StatusCode != http.StatusTeapot {
		t.Errorf("after the hand-off: status %d, want the new server's 418", r.StatusCode)
	}
}
