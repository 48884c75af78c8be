package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/runtime"
)

// Greeter is a request-triggered function with a config.
type Greeter struct {
	Greeting string `json:"greeting"`
}

// Validate checks the config, at deploy time.
func (g *Greeter) Validate() error {
	if g.Greeting == "" {
		return fmt.Errorf("greeting: required")
	}
	return nil
}

// Handle answers {"message": "<greeting>, <name>"}.
func (g *Greeter) Handle(_ context.Context, req *runtime.Request) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(req.Data, &in); err != nil || in.Name == "" {
		return runtime.BadRequest("name", "is required")
	}
	return req.RespondJSON(http.StatusOK, map[string]string{"message": g.Greeting + ", " + in.Name})
}

// A function package registers its module from init().
func init() {
	runtime.Register(runtime.Module{ID: "example.greeter", New: func() any { return new(Greeter) }})
}

func Example() {
	// The host builds it from a manifest's handler id and spec.config.
	fn, err := runtime.NewFunction("example.greeter", json.RawMessage(`{"greeting":"Hello"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	req := runtime.NewRequest("fn.greet", []byte(`{"name":"Ada"}`), nil)
	if err := fn.(runtime.Handler).Handle(context.Background(), req); err != nil {
		fmt.Println(err)
		return
	}
	status, body, _ := req.Response()
	fmt.Println(status, string(body))

	// Config is decoded strictly and validated.
	_, err = runtime.NewFunction("example.greeter", json.RawMessage(`{"greting":"Hi"}`))
	fmt.Println(err)
	// Output:
	// 200 {"message":"Hello, Ada"}
	// invalid handler config: spec.config: json: unknown field "greting"
}

// Counter is a stream-triggered function: it gets batches and settles each
// message: untouched ones are acked, Fail retries, Reject dead-letters.
type Counter struct{ seen int }

// HandleBatch counts valid messages and rejects empty ones.
func (c *Counter) HandleBatch(_ context.Context, batch []*runtime.Msg) error {
	for _, m := range batch {
		if len(m.Data) == 0 {
			m.Reject(runtime.BadRequest("body", "empty message"))
			continue
		}
		c.seen++
	}
	return nil
}

func ExampleBatchHandler() {
	c := &Counter{}
	batch := []*runtime.Msg{{Data: []byte("a")}, {Data: nil}, {Data: []byte("b")}}
	_ = c.HandleBatch(context.Background(), batch)
	fmt.Println(c.seen, batch[1].Settled())
	// Output: 2 true
}

func ExampleHandlerFunc() {
	h := runtime.HandlerFunc(func(context.Context, *runtime.Request) error { panic("bug") })
	err := h.Handle(context.Background(), runtime.NewRequest("fn.x", nil, nil))
	e := runtime.AsError(err)
	fmt.Println(e.Status, e.Code, e.Msg)
	// Output: 500 panic function panicked
}

// A function that acts on one user's data checks the user the gateway
// authenticated (route auth: user) against the user_id it was asked about.
func ExampleRequest_AuthorizeUser() {
	h := runtime.HandlerFunc(func(_ context.Context, req *runtime.Request) error {
		var in struct {
			UserID int64 `json:"user_id"`
		}
		if err := runtime.DecodeJSON(req.Data, &in, ""); err != nil {
			return err
		}
		if err := req.AuthorizeUser(in.UserID); err != nil {
			return err // 403 forbidden: another user's data
		}
		return req.RespondJSON(200, in)
	})
	req := runtime.NewRequest("fn.points", []byte(`{"user_id":42}`), nats.Header{runtime.HeaderUserID: []string{"7"}})
	e := runtime.AsError(h.Handle(context.Background(), req))
	fmt.Println(e.Status, e.Code)
	// Output: 403 forbidden
}
