package runtime

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher publishes to JetStream and waits for the stream's ack
// (jetstream.JetStream is one).
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// publishRetryBudget bounds the retries of a PublishDurable whose context
// has no deadline: a stream's leader election takes a few seconds.
const publishRetryBudget = 15 * time.Second

// PublishDurable publishes msg to JetStream like p.PublishMsg and, while
// the stream cannot take it for a moment (a replicated stream electing a
// new leader after a server died: no responders, a 503 API error, or a
// timeout), publishes it again with exponential backoff and jitter until
// ctx ends (15s at most without a deadline). The ack it returns means the
// message is stored on the stream's replicas.
//
// A timeout is retried only when msg carries Nats-Msg-Id: the first copy
// may have been stored with its ack lost, and the stream's duplicate
// window makes the second a no-op. No responders and 503 errors mean
// nothing was stored, so they are retried either way.
//
// A stream whose leader died drops a publish without an answer, so an
// attempt does not get all of ctx's time: each gets at most half of what
// is left (at least attemptMin), and the rest is for the retries that
// reach the new leader. With no deadline on ctx the first attempt is
// p.PublishMsg itself (JetStream's own timeout applies); a deadline costs
// one context per publish.
//
// When ctx carries a traceparent (a handler's context does, see
// Traceparent) and msg has none, msg gets a child of it (two allocations:
// the header's string and its slice).
func PublishDurable(ctx context.Context, p Publisher, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	traceMsg(ctx, msg)
	var ack *jetstream.PubAck
	var err error
	if d, ok := ctx.Deadline(); ok && time.Until(d) > 2*attemptMin {
		ack, err = publishAttempt(ctx, p, msg, opts, d)
	} else {
		ack, err = p.PublishMsg(ctx, msg, opts...)
	}
	if err == nil || !retryablePublish(err, msg) || ctx.Err() != nil {
		return ack, err
	}
	return publishRetry(ctx, p, msg, opts, err)
}

// attemptMin is the least time a publish attempt gets before it is sent
// again: an ack under load can take a while.
const attemptMin = 500 * time.Millisecond

// publishAttempt publishes msg with half the time left until deadline
// (at least attemptMin).
func publishAttempt(ctx context.Context, p Publisher, msg *nats.Msg, opts []jetstream.PublishOpt, deadline time.Time) (*jetstream.PubAck, error) {
	actx, cancel := context.WithTimeout(ctx, max(time.Until(deadline)/2, attemptMin))
	defer cancel()
	return p.PublishMsg(actx, msg, opts...)
}

// publishRetry is PublishDurable after a first failed attempt.
func publishRetry(ctx context.Context, p Publisher, msg *nats.Msg, opts []jetstream.PublishOpt, err error) (*jetstream.PubAck, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(publishRetryBudget)
	}
	wait := 50 * time.Millisecond
	for {
		// Full jitter: the gateways and hosts that lost the leader at the
		// same moment do not all come back at the same one.
		d := wait/2 + rand.N(wait/2+1)
		if time.Until(deadline) < d {
			return nil, err
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		ack, perr := publishAttempt(ctx, p, msg, opts, deadline)
		if perr == nil {
			return ack, nil
		}
		if !retryablePublish(perr, msg) || ctx.Err() != nil {
			return nil, perr
		}
		err = perr
		// Capped low: an election ends at an unknown moment, and the
		// publish after it should not wait long for its turn.
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// retryablePublish reports whether a failed publish of msg may be sent
// again: the stream had no leader (no responders, a 503 API error), or the
// ack did not come in time or the stream was still storing an earlier try,
// and msg is de-duplicated by Nats-Msg-Id.
func retryablePublish(err error, msg *nats.Msg) bool {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		if apiErr.ErrorCode == errDuplicateInProcess {
			// The first try is still being stored: the next one gets its
			// ack (a duplicate's), or its error.
			return msg.Header.Get(HeaderMsgID) != ""
		}
		return apiErr.Code == http.StatusServiceUnavailable
	}
	if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return msg.Header.Get(HeaderMsgID) != ""
	}
	return false
}

// errDuplicateInProcess is JetStream's answer to a message whose
// Nats-Msg-Id a replicated stream is still storing ("duplicate message id
// is in process"): a retry sent while the attempt that timed out was in
// flight.
const errDuplicateInProcess jetstream.ErrorCode = 10158
