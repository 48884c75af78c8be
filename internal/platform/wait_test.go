package platform

import (
	"errors"
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
