package runtime_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
)

// flakyPublisher fails its first len(errs) publishes with those errors,
// then acks.
type flakyPublisher struct {
	errs  []error
	calls int
	ack   jetstream.PubAck
}

func (p *flakyPublisher) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	p.calls++
	if p.calls <= len(p.errs) {
		return nil, p.errs[p.calls-1]
	}
	return &p.ack, nil
}

func TestPublishDurable(t *testing.T) {
	unavailable := &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	badRequest := &jetstream.APIError{Code: 400, ErrorCode: 10071, Description: "wrong last sequence"}
	inProcess := &jetstream.APIError{Code: 409, ErrorCode: 10158, Description: "duplicate message id is in process"}
	withID := func() *nats.Msg {
		return &nats.Msg{Subject: "orders.submit", Header: nats.Header{runtime.HeaderMsgID: {"o-1"}}}
	}
	withoutID := func() *nats.Msg { return &nats.Msg{Subject: "events.track"} }
	tests := []struct {
		name      string
		errs      []error
		msg       *nats.Msg
		timeout   time.Duration
		wantCalls int
		wantErr   error
	}{
		{name: "success at once", msg: withID(), wantCalls: 1},
		{name: "no responders during an election, then acked", errs: []error{jetstream.ErrNoStreamResponse, nats.ErrNoResponders},
			msg: withoutID(), wantCalls: 3},
		{name: "503 api error retried", errs: []error{unavailable}, msg: withoutID(), wantCalls: 2},
		{name: "timeout retried with Nats-Msg-Id", errs: []error{context.DeadlineExceeded, nats.ErrTimeout}, msg: withID(), wantCalls: 3},
		{name: "timeout not retried without Nats-Msg-Id (could double)", errs: []error{nats.ErrTimeout}, msg: withoutID(),
			wantCalls: 1, wantErr: nats.ErrTimeout},
		{name: "a 400 is final", errs: []error{badRequest}, msg: withID(), wantCalls: 1, wantErr: badRequest},
		{name: "duplicate id in process retried with Nats-Msg-Id", errs: []error{inProcess}, msg: withID(), wantCalls: 2},
		{name: "duplicate id in process final without one", errs: []error{inProcess}, msg: withoutID(), wantCalls: 1, wantErr: inProcess},
		{name: "gives up at the deadline", errs: repeat(jetstream.ErrNoStreamResponse, 1000), msg: withID(),
			timeout: 300 * time.Millisecond, wantErr: jetstream.ErrNoStreamResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			p := &flakyPublisher{errs: tt.errs}
			start := time.Now()
			ack, err := runtime.PublishDurable(ctx, p, tt.msg)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err == nil && ack != &p.ack {
				t.Errorf("ack %v, want the publisher's", ack)
			}
			if tt.wantCalls > 0 && p.calls != tt.wantCalls {
				t.Errorf("%d publishes, want %d", p.calls, tt.wantCalls)
			}
			if tt.timeout > 0 {
				if el := time.Since(start); el > tt.timeout+200*time.Millisecond {
					t.Errorf("returned after %s, past the %s deadline", el, tt.timeout)
				}
				if p.calls < 3 {
					t.Errorf("only %d publishes within %s: not retried", p.calls, tt.timeout)
				}
			}
		})
	}
}

// stalledPublisher is a stream whose leader died: its first stalls
// publishes get no answer until their context ends.
type stalledPublisher struct {
	stalls int
	calls  int
	ack    jetstream.PubAck
}

func (p *stalledPublisher) PublishMsg(ctx context.Context, _ *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	p.calls++
	if p.calls <= p.stalls {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &p.ack, nil
}

// TestPublishDurableStalledAttempt: a publish the dead leader never
// answers does not take the whole deadline; the retry after it is acked
// in time.
func TestPublishDurableStalledAttempt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p := &stalledPublisher{stalls: 1}
	msg := &nats.Msg{Subject: "orders.submit", Header: nats.Header{runtime.HeaderMsgID: {"o-1"}}}
	if _, err := runtime.PublishDurable(ctx, p, msg); err != nil {
		t.Fatalf("%v after %d attempts; want the second attempt acked within the deadline", err, p.calls)
	}
	if p.calls != 2 {
		t.Errorf("%d attempts, want 2", p.calls)
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// TestPublishDurableSuccessAllocatesNothing: the order hot path pays no
// allocation for the retry logic when the first publish is acked.
func TestPublishDurableSuccessAllocatesNothing(t *testing.T) {
	p := &flakyPublisher{}
	msg := &nats.Msg{Subject: "orders.submit", Header: nats.Header{runtime.HeaderMsgID: {"o-1"}}}
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := runtime.PublishDurable(ctx, p, msg); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per successful publish, want 0", n)
	}
}

func BenchmarkPublishDurableSuccess(b *testing.B) {
	p := &flakyPublisher{}
	msg := &nats.Msg{Subject: "orders.submit", Header: nats.Header{runtime.HeaderMsgID: {"o-1"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = runtime.PublishDurable(ctx, p, msg)
	}
}
