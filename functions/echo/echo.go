// Package echo is the trivial built-in function: it answers with the
// request body. The tour and the `echo` benchmark use it.
package echo

import (
	"context"

	"github.com/surgefn/surge/runtime"
)

func init() {
	runtime.Register(runtime.Module{ID: "echo", New: func() any { return new(Echo) }})
}

// Echo answers every request with its body.
type Echo struct{}

var _ runtime.Handler = (*Echo)(nil)

// Handle responds with the request body.
func (*Echo) Handle(_ context.Context, req *runtime.Request) error {
	if ct := req.Header.Get(runtime.HeaderContentType); ct != "" {
		req.SetHeader(runtime.HeaderContentType, ct)
	}
	req.Respond(req.Data)
	return nil
}
