package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestCallLocal: the reply of a handler in time; the reply of one that
// answers just after its deadline (its own 504) within replySlack; a
// handler that ignores its context answered with DeadlineExceeded at the
// deadline plus replySlack; a client hanging up answered at once, the
// handler's context still open until the deadline.
func TestCallLocal(t *testing.T) {
	w := newWorkers(4)
	defer w.stop()
	reply := &nats.Msg{Data: []byte("ok")}
	tests := []struct {
		name     string
		run      func(ctx context.Context) *nats.Msg
		hangUp   time.Duration // the client hangs up after this (0: never)
		wantErr  error
		min, max time.Duration
	}{
		{"in time", func(context.Context) *nats.Msg { return reply }, 0, nil, 0, 90 * time.Millisecond},
		{"own 504 just after the deadline", func(ctx context.Context) *nats.Msg {
			<-ctx.Done()
			time.Sleep(replySlack / 5)
			return reply
		}, 0, nil, 100 * time.Millisecond, 900 * time.Millisecond},
		{"ignores its context", func(context.Context) *nats.Msg {
			time.Sleep(time.Second)
			return reply
		}, 0, context.DeadlineExceeded, 100*time.Millisecond + replySlack, 900 * time.Millisecond},
		{"client hangs up", func(ctx context.Context) *nats.Msg {
			<-ctx.Done()
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Errorf("handler context ended with %v, want its deadline", ctx.Err())
			}
			return reply
		}, 20 * time.Millisecond, context.Canceled, 20 * time.Millisecond, 90 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.hangUp > 0 {
				time.AfterFunc(tt.hangUp, cancel)
			}
			start := time.Now()
			got, err := callLocal(ctx, w, tt.run, start.Add(100*time.Millisecond))
			took := time.Since(start)
			if !errors.Is(err, tt.wantErr) || (err == nil && got != reply) {
				t.Fatalf("callLocal = %v, %v; want %v", got, err, tt.wantErr)
			}
			// Bounds, not speed: before the deadline, at or after it, before
			// the stubborn handler returns.
			if took < tt.min || took > tt.max {
				t.Errorf("answered after %s, want %s to %s", took.Round(time.Millisecond), tt.min, tt.max)
			}
		})
	}
}
