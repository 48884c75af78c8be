package gateway

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
)

// CredsIssuer issues NATS credentials for external functions
// (*natsauth.Authority of the embedded server).
type CredsIssuer interface {
	// FunctionCreds returns a .creds file that may serve subject in the
	// queue group queue and nothing else; rotate revokes the earlier ones
	// of name.
	FunctionCreds(name, subject, queue string, rotate bool) ([]byte, error)
}

// newCredsHandler serves POST /admin/functions/{name}/creds[?rotate=true]:
// the credentials file of the external function name. Only an external
// function with a request trigger gets one: a built-in runs inside surge on
// surge's own credentials, and credentials to join its queue group would
// let their holder answer its calls. Without an issuer (a gateway against
// an external NATS, whose credentials surge does not own) it is 501.
func newCredsHandler(reg functionStore, issuer CredsIssuer) echo.HandlerFunc {
	return func(c echo.Context) error {
		rotate := false
		if v := c.QueryParam("rotate"); v != "" {
			var err error
			if rotate, err = strconv.ParseBool(v); err != nil {
				return runtime.BadRequest("rotate", "want true or false, got %q", v)
			}
		}
		d, err := reg.Get(c.Request().Context(), c.Param("name"))
		if err != nil {
			return registryError(err)
		}
		fn := d.Function
		switch {
		case fn.Spec.Handler != manifests.HandlerExternal:
			return &runtime.Error{Status: http.StatusBadRequest, Code: "not_external",
				Msg: "function " + fn.Metadata.Name + " is not external (handler " + fn.Spec.Handler + "): surge serves it with its own credentials"}
		case fn.Spec.Trigger.Subject == "":
			return &runtime.Error{Status: http.StatusBadRequest, Code: "not_external",
				Msg: "function " + fn.Metadata.Name + " has a stream trigger: credentials are issued for request triggers only"}
		case issuer == nil:
			return &runtime.Error{Status: http.StatusNotImplemented, Code: "creds_unavailable",
				Msg: "this gateway issues no NATS credentials: ask the gateway of the `surge up` that embeds NATS, or the operator of the external NATS"}
		}
		creds, err := issuer.FunctionCreds(fn.Metadata.Name, fn.Spec.Trigger.Subject, fn.QueueName(), rotate)
		if err != nil {
			return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "creds_unavailable", Msg: "cannot issue credentials", Err: err}
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Blob(http.StatusOK, "text/plain; charset=utf-8", creds)
	}
}
