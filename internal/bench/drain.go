package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/natsauth"
)

// DrainConfig names the durable consumer whose backlog verification waits
// for, and where it is.
type DrainConfig struct {
	// NATSURL is the platform's NATS.
	NATSURL string
	// Auth authenticates to it: reading a consumer's state takes more than
	// client.creds allows (surge.creds does).
	Auth natsauth.Client
	// Stream and Consumer name the durable consumer (ORDERS / order-persist).
	Stream, Consumer string
	// Timeout bounds the wait.
	Timeout time.Duration
}

// wait polls the consumer until nothing is pending delivery or
// acknowledgement, and returns when that was first seen. Every message the
// run got acknowledged is in the stream before this is called, so an empty
// consumer means each of them has been handled (stored) and acked. r's CPU
// figure is taken then (Result.settled).
func (d *DrainConfig) wait(ctx context.Context, r *Result) (time.Time, error) {
	if d.Timeout <= 0 {
		return time.Time{}, fmt.Errorf("--verify-timeout must be positive, got %s", d.Timeout)
	}
	nc, err := d.Auth.Connect(d.NATSURL, nats.Name("surge-bench-verify"))
	if err != nil {
		return time.Time{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	c, err := js.Consumer(ctx, d.Stream, d.Consumer)
	if err != nil {
		return time.Time{}, fmt.Errorf("consumer %s on stream %s: %w", d.Consumer, d.Stream, err)
	}
	var last *jetstream.ConsumerInfo
	for {
		info, err := c.Info(ctx)
		switch {
		case err == nil:
			last = info
			if info.NumPending == 0 && info.NumAckPending == 0 {
				r.settled()
				return time.Now(), nil
			}
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
		default:
			if ctx.Err() == nil {
				return time.Time{}, fmt.Errorf("consumer %s info: %w", d.Consumer, err)
			}
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return time.Time{}, fmt.Errorf("consumer %s on %s not drained within %s: %d pending, %d awaiting ack",
					d.Consumer, d.Stream, d.Timeout, last.NumPending, last.NumAckPending)
			}
			return time.Time{}, fmt.Errorf("consumer %s on %s: %w", d.Consumer, d.Stream, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
