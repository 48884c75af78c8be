package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// kvStore is the part of a KV bucket the call handlers use.
type kvStore interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
}

type invokeDeps struct {
	nc        runtime.Requester
	js        runtime.Publisher
	calls     kvStore
	table     func() *Table
	bodyLimit int64
	auth      routeAuth
	proxies   TrustedProxies
	gate      *gate
	local     LocalCaller            // nil: every call goes through NATS
	workers   *workers               // run local calls (with local)
	sync      *prometheus.CounterVec // surge_gateway_sync_calls_total; nil: not counted
}

// newRouteHandler serves the routes of deployed functions.
func newRouteHandler(d invokeDeps) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		var p Params
		// Match on the escaped path so an encoded '/' stays inside its
		// parameter (/v1/items/a%2Fb/stats); parameters are unescaped.
		route, allowed := d.table().Match(r.Method, r.URL.EscapedPath(), &p)
		if route == nil {
			if len(allowed) > 0 {
				c.Response().Header().Set("Allow", strings.Join(allowed, ", "))
				return runtime.Errorf(http.StatusMethodNotAllowed, "method_not_allowed",
					"%s is not allowed on %s", r.Method, r.URL.Path)
			}
			return runtime.Errorf(http.StatusNotFound, "not_found", "no route for %s %s", r.Method, r.URL.Path)
		}
		c.Set(routeKey, route.Name)
		user, err := d.auth.check(c, route.Target.Auth)
		if err != nil {
			return err
		}
		if !d.gate.enter() {
			return errGatewayOverloaded
		}
		defer d.gate.leave()
		if route.Async {
			return invokeAsync(c, d, route.Target, &p, user)
		}
		return invokeSync(c, d, route.Target, &p, user)
	}
}

// newByNameHandler serves POST /function/{name} and /async-function/{name}.
func newByNameHandler(d invokeDeps, async bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		name := c.Param("name")
		tg, ok := d.table().Target(name)
		if !ok {
			return runtime.Errorf(http.StatusNotFound, "function_not_found", "function %s is not deployed", name)
		}
		user, err := d.auth.check(c, tg.Auth)
		if err != nil {
			return err
		}
		if !d.gate.enter() {
			return errGatewayOverloaded
		}
		defer d.gate.leave()
		var p Params
		if async || tg.Stream {
			if tg.Publish == "" {
				return runtime.Errorf(http.StatusBadRequest, "not_invocable",
					"function %s consumes a wildcard filter; publish to its stream directly", name)
			}
			if !async {
				return runtime.Errorf(http.StatusBadRequest, "stream_function",
					"function %s is stream-triggered; call it with POST /async-function/%s", name, name)
			}
			return invokeAsync(c, d, tg, &p, user)
		}
		return invokeSync(c, d, tg, &p, user)
	}
}

// invokeSync sends the call as a NATS request and relays the reply: 503
// overloaded at once when the function's in-flight limit is reached, 503
// when nothing serves the subject, 504 after the function's timeout, the
// function's own error otherwise. user is the authenticated end user, 0
// for none.
func invokeSync(c echo.Context, d invokeDeps, tg *Target, p *Params, user int64) error {
	r := c.Request()
	body, err := readBody(r, d.bodyLimit)
	if err != nil {
		return err
	}
	// Admission after the body is read: a slow client holds no slot.
	var start int64
	if tg.limit != nil {
		var ok bool
		if start, ok = tg.limit.acquire(); !ok {
			return errOverloaded(tg.Function)
		}
	}
	outcome := callOther
	defer func() {
		if tg.limit != nil {
			tg.limit.release(start, outcome)
		}
	}()
	reqID, tp := hop(c)
	msg := buildMsg(tg.Subject, r, reqID, tp, p, user, body, syncHeaders)
	setClientIP(msg, r, d.proxies)
	// The host refuses a call that waited in its queue for most of this
	// deadline rather than run it for a caller that has given up.
	deadline := time.Now().Add(tg.Timeout)
	msg.Header[wire.HeaderDeadline] = []string{strconv.FormatInt(deadline.UnixMilli(), 10)}
	resp, err := d.request(r.Context(), tg.Function, msg, deadline)
	switch {
	case err == nil:
		outcome = callDone
		switch {
		case resp.Header.Get(wire.HeaderServiceErrorCode) == "503" && resp.Header.Get(wire.HeaderErrorCode) == wire.CodeOverloaded:
			outcome = callOverloaded
		case resp.Header[wire.HeaderSlotWait] != nil:
			outcome = callQueued
		}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		outcome = callOverloaded
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "no_instances",
			Msg: "no instance is serving function " + tg.Function, Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return &runtime.Error{Status: http.StatusGatewayTimeout, Code: "timeout",
			Msg: "function " + tg.Function + " did not answer within " + tg.Timeout.String(), Err: err}
	case errors.Is(err, context.Canceled):
		return &runtime.Error{Status: 499, Code: "client_closed", Msg: "client closed the request", Err: err}
	case err != nil:
		return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "nats_unavailable",
			Msg: "the messaging layer is unavailable", Err: err}
	}
	if e := runtime.ErrorFromHeaders(resp.Header); e != nil {
		if ra := resp.Header.Get(wire.HeaderRetryAfter); ra != "" {
			c.Response().Header().Set("Retry-After", ra)
		}
		return e
	}
	writeReply(c.Response(), resp)
	return nil
}

// request sends a sync call that the caller waits for until deadline or
// until ctx (the client) ends: to an instance in this process when one
// takes it (Config.Local), else through NATS to the function's queue group.
func (d *invokeDeps) request(ctx context.Context, function string, msg *nats.Msg, deadline time.Time) (*nats.Msg, error) {
	if d.local != nil {
		if run, ok := d.local.LocalCall(function, msg); ok {
			d.count(function, "local")
			return callLocal(ctx, d.workers, run, deadline)
		}
	}
	d.count(function, "nats")
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(replySlack))
	defer cancel()
	return d.nc.RequestMsgWithContext(ctx, msg)
}

// replySlack is how long past its deadline the gateway waits for a call's
// reply, so that the function's own 504 (with its message) wins.
const replySlack = 50 * time.Millisecond

// callLocal runs a call a local instance took on a goroutine of its own
// (a worker of w), as over NATS: the deadline and the client hanging up
// (ctx) end the wait (504, 499), and a handler that runs on does not hold
// the answer; it keeps its slot until it returns. The handler's context ends at the
// deadline, not when the client hangs up (a call over NATS does not learn
// of that either). Its deadline is the call's one timer while the handler
// runs in time.
func callLocal(ctx context.Context, w *workers, run func(context.Context) *nats.Msg, deadline time.Time) (*nats.Msg, error) {
	hctx, cancel := context.WithDeadline(context.Background(), deadline)
	done := make(chan *nats.Msg, 1)
	w.run(func() {
		defer cancel()
		done <- run(hctx)
	})
	select {
	case resp := <-done:
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-hctx.Done():
	}
	slack := time.NewTimer(replySlack)
	defer slack.Stop()
	select {
	case resp := <-done:
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-slack.C:
		return nil, context.DeadlineExceeded
	}
}

func (d *invokeDeps) count(function, via string) {
	if d.sync != nil {
		d.sync.WithLabelValues(function, via).Inc()
	}
}

var (
	// idemKeyPattern is an Idempotency-Key the gateway accepts.
	idemKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	// callIDPattern is a call id: a key, with a user prefix of up to 21
	// characters when the call was a user's.
	callIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,150}$`)
)

// newCallID is a call id nobody can guess: 128 random bits. Without auth
// on its route, the id is what lets a caller read a call's result.
func newCallID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// invokeAsync publishes the call to JetStream, de-duplicated on the
// Idempotency-Key or a fresh call id, records it as queued, and answers 202
// with X-Call-Id.
func invokeAsync(c echo.Context, d invokeDeps, tg *Target, p *Params, user int64) error {
	r := c.Request()
	body, err := readBody(r, d.bodyLimit)
	if err != nil {
		return err
	}
	key := r.Header.Get(wire.HeaderIdempotencyKey)
	var id string
	switch {
	case key == "":
		id = newCallID()
	case !idemKeyPattern.MatchString(key):
		return runtime.BadRequest("Idempotency-Key", "must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'")
	case user > 0:
		// Keys are scoped by user: another user's key is another call,
		// so it neither collides with theirs nor reveals it.
		id = "u" + strconv.FormatInt(user, 10) + "-" + key
	default:
		id = key
	}
	reqID, tp := hop(c)
	msg := buildMsg(tg.Publish, r, reqID, tp, p, user, body, asyncHeaders)
	setClientIP(msg, r, d.proxies)
	msg.Header[wire.HeaderCallID] = []string{id}
	msg.Header[wire.HeaderFunction] = []string{tg.Function}
	msg.Header[wire.HeaderMsgID] = []string{id}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	ack, err := runtime.PublishDurable(ctx, d.js, msg)
	if err != nil {
		return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "queue_unavailable",
			Msg: "the call could not be queued; retry later", Err: err}
	}
	if !ack.Duplicate {
		st := wire.CallStatus{CallID: id, Function: tg.Function, Status: wire.CallQueued, UpdatedAt: time.Now().UTC(), UserID: user}
		if b, err := json.Marshal(st); err == nil {
			// Best effort, one round trip: Create never overwrites a status
			// the runtime already wrote.
			_, _ = d.calls.Create(ctx, id, b)
		}
	}
	c.Response().Header().Set("X-Call-Id", id)
	return c.JSON(http.StatusAccepted, queuedResponse{CallID: id, Status: wire.CallQueued, Function: tg.Function})
}

// queuedResponse is the 202 body of an async call.
type queuedResponse struct {
	CallID   string `json:"call_id"`
	Status   string `json:"status"`
	Function string `json:"function"`
}
