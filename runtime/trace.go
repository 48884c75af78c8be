package runtime

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/runtime/wire"
)

// HeaderTraceparent is the W3C traceparent a call or message arrived with.
const HeaderTraceparent = wire.HeaderTraceparent

type traceKey struct{}

// WithTraceparent returns ctx carrying traceparent, the hop a handler runs
// in; the host sets it for every call and stream message that has one.
func WithTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, traceparent)
}

// Traceparent is the traceparent ctx carries ("" when none): log its
// TraceID to tie a function's lines to the request that caused them.
func Traceparent(ctx context.Context) string {
	s, _ := ctx.Value(traceKey{}).(string)
	return s
}

// TraceID is the trace id of the traceparent ctx carries ("" when none).
func TraceID(ctx context.Context) string { return wire.TraceID(Traceparent(ctx)) }

// traceMsg gives msg a traceparent that is a child of ctx's, unless it
// has one or ctx has none: what a function publishes stays in the trace of
// the call that published it.
func traceMsg(ctx context.Context, msg *nats.Msg) {
	tp := Traceparent(ctx)
	if tp == "" || msg.Header.Get(wire.HeaderTraceparent) != "" {
		return
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Header[wire.HeaderTraceparent] = []string{wire.ChildTraceparent(tp)}
}
