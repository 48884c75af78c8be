package gateway

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// newCallStatusHandler serves GET /calls/{id}: the status and result of an
// async call, to whoever may call its function: the route's auth applies
// (a function without a route takes the admin token), and a user's call
// is 404 to every other user.
func newCallStatusHandler(calls kvStore, d invokeDeps) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		if !callIDPattern.MatchString(id) {
			return runtime.BadRequest("id", "not a valid call id")
		}
		var value []byte
		e, err := calls.Get(c.Request().Context(), id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			// A KV read may be served by a replica that has not seen the
			// write yet (a call polled right after its 202, at 3
			// replicas): the stream's leader has it if anyone does.
			value, _, err = runtime.KVLeaderGet(c.Request().Context(), d.nc, wire.BucketCalls, id)
		} else if err == nil {
			value = e.Value()
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return runtime.Errorf(http.StatusNotFound, "call_not_found", "no call with id %s", id)
		}
		if err != nil {
			return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "kv_unavailable", Msg: "call status is unavailable", Err: err}
		}
		var st wire.CallStatus
		if err := json.Unmarshal(value, &st); err != nil {
			return &runtime.Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "call status is unreadable", Err: err}
		}
		mode := manifests.AuthAdmin // a removed function's calls: admin only
		if tg, ok := d.table().Target(st.Function); ok {
			mode = tg.Auth
		}
		user, err := d.auth.check(c, mode)
		if err != nil {
			return err
		}
		if st.UserID != 0 && st.UserID != user && mode == manifests.AuthUser {
			return runtime.Errorf(http.StatusNotFound, "call_not_found", "no call with id %s", id)
		}
		return c.JSONBlob(http.StatusOK, value)
	}
}
