package testenv

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishAsync publishes msgs to JetStream without waiting for each ack
// (waiting out back-pressure), then returns each message's ack, nil for
// one that was not acked (logged).
func PublishAsync(t testing.TB, js jetstream.JetStream, msgs []*nats.Msg) []*jetstream.PubAck {
	t.Helper()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	deadline := time.Now().Add(30 * time.Second)
	for i, m := range msgs {
		for {
			f, err := js.PublishMsgAsync(m)
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && time.Now().Before(deadline) {
				// Back-pressure: too many acks outstanding. Let them land.
				select {
				case <-js.PublishAsyncComplete():
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			futures[i] = f
			break
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publish acks did not arrive within 30s")
	}
	acks := make([]*jetstream.PubAck, len(msgs))
	for i, f := range futures {
		select {
		case acks[i] = <-f.Ok():
		case err := <-f.Err():
			t.Logf("publish %d (%s) not acked: %v", i, msgs[i].Header.Get("Nats-Msg-Id"), err)
		}
	}
	return acks
}
