// Package runtime is the library surge functions are written against: the
// handler interfaces, the request and stream message types, the typed
// error the caller sees, module registration, the Env a function gets its
// KV buckets, store, logger, metrics and clock from, and a few helpers
// (DecodeJSON, ForEach, Cache, AuthorizeUser, and SchemaOf for a function
// that describes its route to the gateway's OpenAPI document). It holds nothing else: the host that runs
// functions is the platform's (internal/host), and the wire format the
// gateway, the host and external functions share is package runtime/wire.
package runtime

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Handler serves one request of a request-triggered function. It answers
// with req.Respond or req.RespondJSON; a returned error is sent to the
// caller instead (an *Error keeps its status, anything else becomes a 500).
type Handler interface {
	Handle(ctx context.Context, req *Request) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) error

// Handle calls f, turning a panic into a 500 so the host keeps serving.
func (f HandlerFunc) Handle(ctx context.Context, req *Request) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Status: http.StatusInternalServerError, Code: "panic", Msg: "function panicked",
				Err: fmt.Errorf("panic: %v\n%s", r, debug.Stack())}
		}
	}()
	return f(ctx, req)
}

// BatchHandler serves a batch of stream messages. Returning an error fails
// every message not settled with Msg.Fail or Msg.Reject; returning nil acks
// every message not settled.
type BatchHandler interface {
	HandleBatch(ctx context.Context, batch []*Msg) error
}

// BatchHandlerFunc adapts a function to BatchHandler.
type BatchHandlerFunc func(ctx context.Context, batch []*Msg) error

// HandleBatch calls f, turning a panic into an error for the whole batch.
func (f BatchHandlerFunc) HandleBatch(ctx context.Context, batch []*Msg) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Status: http.StatusInternalServerError, Code: "panic", Msg: "function panicked",
				Err: fmt.Errorf("panic: %v\n%s", r, debug.Stack())}
		}
	}()
	return f(ctx, batch)
}

// ForEach calls fn(i, items[i]) for every item on up to concurrency
// goroutines and returns when all calls have: for batch handlers whose
// messages (or other pieces of work) are independent.
func ForEach[T any](items []T, concurrency int, fn func(i int, item T)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(concurrency, 1), len(items)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(items); i = int(next.Add(1)) - 1 {
				fn(i, items[i])
			}
		})
	}
	wg.Wait()
}
