package host

import (
	"fmt"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
)

// CheckHandler tells whether a runtime host could run fn: its handler is
// registered (or "external"), its spec.config decodes and validates, and
// it can serve the trigger. Deploys check it before a manifest lands in
// the registry; hosts apply the same checks when they start fn.
func CheckHandler(fn *manifests.Function) error {
	if fn.Spec.Handler == manifests.HandlerExternal {
		return nil
	}
	v, err := runtime.NewFunction(fn.Spec.Handler, fn.Spec.Config)
	if err != nil {
		return err
	}
	return servesTrigger(fn, v)
}

// servesTrigger tells whether the function value v can serve fn's trigger:
// a stream trigger takes a Handler or a BatchHandler (NewFunction makes
// sure of one), a request trigger needs a Handler.
func servesTrigger(fn *manifests.Function, v any) error {
	if _, ok := v.(runtime.Handler); !ok && !fn.IsStream() {
		return fmt.Errorf("%w: handler %q cannot serve a request trigger (no Handle method)", runtime.ErrUnknownHandler, fn.Spec.Handler)
	}
	return nil
}
