package events

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
)

// Ingest is the events.ingest module (POST /v1/events): it validates one
// event or an array of up to MaxEvents, publishes them as one message (an
// array) on events.track and answers 202 {"accepted":N} once the stream
// acknowledged it. An Idempotency-Key header becomes the message's
// Nats-Msg-Id, so a retried POST within the stream's duplicate window is
// counted once. Through a route with auth: user, every event must be the
// signed-in user's (else 403 forbidden, and none is published).
type Ingest struct {
	js jetstream.JetStream
}

var (
	_ runtime.Handler     = (*Ingest)(nil)
	_ runtime.Provisioner = (*Ingest)(nil)
)

// Provision keeps the JetStream context. The EVENTS stream is declared
// under spec.publishes, so the host made sure of it.
func (in *Ingest) Provision(ctx context.Context, env *runtime.Env) error {
	in.js = env.JS
	return env.RequireStream(ctx, SubjectTrack)
}

// ingestResponse is the 202 body.
type ingestResponse struct {
	Accepted int `json:"accepted"`
}

// Handle serves POST /v1/events.
func (in *Ingest) Handle(ctx context.Context, req *runtime.Request) error {
	evs, err := Parse(req.Data)
	if err != nil {
		return err
	}
	for i := range evs {
		if err := req.AuthorizeUser(evs[i].UserID); err != nil {
			return err // 403: an event of another user than the signed-in one
		}
	}
	// The body as it came (validated), always as an array: no encoding again.
	b := bytes.TrimSpace(req.Data)
	if b[0] != '[' {
		b = append(append(append(make([]byte, 0, len(b)+2), '['), b...), ']')
	}
	msg := &nats.Msg{Subject: SubjectTrack, Data: b, Header: nats.Header{}}
	if key := req.Header.Get(runtime.HeaderIdempotencyKey); key != "" {
		msg.Header.Set(runtime.HeaderMsgID, "events:"+key)
	}
	if _, err := runtime.PublishDurable(ctx, in.js, msg); err != nil {
		return runtime.Internal(fmt.Errorf("publish %d events: %w", len(evs), err))
	}
	return req.RespondJSON(http.StatusAccepted, ingestResponse{Accepted: len(evs)})
}
