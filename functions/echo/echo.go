// Package echo is the trivial built-in function: it answers with the
// request body. The tour and the `echo` benchmark use it; with a delay in
// its config it is a function of known capacity (concurrency / delay) for
// the overload test and benchmark.
package echo

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
)

func init() {
	runtime.Register(runtime.Module{ID: "echo", New: func() any { return new(Echo) }})
}

// Echo answers every request with its body.
type Echo struct {
	// Delay is how long each call takes before it answers (spec.config
	// {"delay": "20ms"}); 0 answers at once.
	Delay manifests.Duration `json:"delay"`
}

var (
	_ runtime.Handler   = (*Echo)(nil)
	_ runtime.Validator = (*Echo)(nil)
)

// Validate refuses a negative delay.
func (e *Echo) Validate() error {
	if e.Delay < 0 {
		return errors.New("delay must not be negative")
	}
	return nil
}

// Handle responds with the request body, after the delay.
func (e *Echo) Handle(ctx context.Context, req *runtime.Request) error {
	if e.Delay > 0 {
		t := time.NewTimer(e.Delay.Std())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if ct := req.Header.Get(runtime.HeaderContentType); ct != "" {
		req.SetHeader(runtime.HeaderContentType, ct)
	}
	req.Respond(req.Data)
	return nil
}

var _ runtime.HTTPDescriber = (*Echo)(nil)

// DescribeHTTP describes the echo route: any JSON body comes back as it is.
func (*Echo) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary:   "answer with the request body",
		Request:   runtime.Schema(`{"description":"any JSON value"}`),
		Responses: map[int]runtime.Schema{http.StatusOK: runtime.Schema(`{"description":"the request body"}`)},
	}
}
