package gateway

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// errorBody is the JSON error envelope every error response uses.
type errorBody struct {
	Error wire.ErrorBody `json:"error"`
}

// newErrorHandler is the one place errors become HTTP: a *runtime.Error
// keeps its status, code and message; Echo's own errors (404, 405, 413)
// get a code from their status; anything else is a 500 whose cause is
// logged, never sent.
func newErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := toError(err)
		if e.Status >= 500 && e.Err != nil {
			log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path,
				"status", e.Status, "code", e.Code, "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
				"trace_id", wire.TraceID(c.Response().Header().Get(wire.HeaderTraceresponse)), "err", e.Err)
		}
		if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
			if c.Response().Header().Get("Retry-After") == "" {
				c.Response().Header().Set("Retry-After", "1")
			}
		}
		body := errorBody{Error: wire.ErrorBody{Code: e.Code, Message: e.Msg}}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(e.Status)
			return
		}
		_ = c.JSON(e.Status, body)
	}
}

func toError(err error) *runtime.Error {
	var re *runtime.Error
	if errors.As(err, &re) {
		return re
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && s != "" {
			msg = s
		}
		return &runtime.Error{Status: he.Code, Code: wire.CodeForStatus(he.Code), Msg: msg, Err: he.Internal}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit)
	}
	return runtime.Internal(err)
}
