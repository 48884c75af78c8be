package gateway

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
)

// newCallStatusHandler serves GET /calls/{id}: the status and result of an
// async call.
func newCallStatusHandler(calls kvStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		if !callIDPattern.MatchString(id) {
			return runtime.BadRequest("id", "not a valid call id")
		}
		e, err := calls.Get(c.Request().Context(), id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return runtime.Errorf(http.StatusNotFound, "call_not_found", "no call with id %s", id)
		}
		if err != nil {
			return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "kv_unavailable", Msg: "call status is unavailable", Err: err}
		}
		return c.JSONBlob(http.StatusOK, e.Value())
	}
}
