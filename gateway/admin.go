package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/deploy"
	"github.com/surgefn/surge/internal/host"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// functionStore is the deployed-function registry (*manifests.Registry).
type functionStore interface {
	Get(ctx context.Context, name string) (manifests.Deployed, error)
	Put(ctx context.Context, fn manifests.Function) (manifests.Deployed, bool, error)
	Delete(ctx context.Context, name string) error
	List(ctx context.Context) ([]manifests.Deployed, error)
}

// FunctionInfo is one row of GET /admin/functions.
type FunctionInfo struct {
	Name      string              `json:"name"`
	Handler   string              `json:"handler"`
	Subject   string              `json:"subject,omitempty"`
	Stream    string              `json:"stream,omitempty"`
	Filter    string              `json:"filter,omitempty"`
	Route     string              `json:"route,omitempty"`
	Revision  string              `json:"revision"`
	Seq       uint64              `json:"seq"`
	Replicas  int                 `json:"replicas"`
	Instances int                 `json:"instances_ready"`
	Hosts     int                 `json:"hosts"`
	Errors    []string            `json:"errors,omitempty"`
	Manifest  *manifests.Function `json:"manifest,omitempty"`
	// Autoscale is set for a function with spec.autoscale.
	Autoscale *AutoscaleInfo `json:"autoscale,omitempty"`
}

// AutoscaleInfo is the autoscaling of one function: the bounds per host
// from its manifest, and the instances the hosts running its revision
// want between them.
type AutoscaleInfo struct {
	Min     int `json:"min"`
	Max     int `json:"max"`
	Desired int `json:"desired"`
}

func info(d manifests.Deployed, hosts []wire.HostStatus) FunctionInfo {
	fn := d.Function
	fi := FunctionInfo{Name: fn.Metadata.Name, Handler: fn.Spec.Handler, Subject: fn.Spec.Trigger.Subject,
		Stream: fn.Spec.Trigger.Stream, Filter: fn.Spec.Trigger.Filter, Revision: fn.Revision(), Seq: d.Seq,
		Replicas: fn.Spec.Replicas}
	if a := fn.Spec.Autoscale; a != nil {
		fi.Autoscale = &AutoscaleInfo{Min: a.Min, Max: a.Max}
	}
	if fn.Spec.HTTP != nil {
		fi.Route = fn.Spec.HTTP.Method + " " + fn.Spec.HTTP.Path
		if fn.Spec.HTTP.Async {
			fi.Route += " (async)"
		}
	}
	for _, h := range hosts {
		st, ok := h.Functions[fn.Metadata.Name]
		if !ok {
			continue
		}
		if st.Error != "" {
			fi.Errors = append(fi.Errors, h.Host+": "+st.Error)
		}
		if st.Revision == fi.Revision {
			fi.Instances += st.Instances
			fi.Hosts++
			if fi.Autoscale != nil && st.Autoscale != nil {
				fi.Autoscale.Desired += st.Autoscale.Desired
			}
		}
	}
	return fi
}

// newListHandler serves GET /admin/functions.
func newListHandler(reg functionStore, js jetstream.JetStream) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		list, err := reg.List(ctx)
		if err != nil {
			return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "registry_unavailable", Msg: "cannot read deployed functions", Err: err}
		}
		hosts, _ := host.ReadStatuses(ctx, js)
		out := make([]FunctionInfo, 0, len(list))
		for _, d := range list {
			out = append(out, info(d, hosts))
		}
		return c.JSON(http.StatusOK, map[string]any{"functions": out, "hosts": len(hosts)})
	}
}

// newGetFunctionHandler serves GET /admin/functions/{name}.
func newGetFunctionHandler(reg functionStore, js jetstream.JetStream) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		d, err := reg.Get(ctx, c.Param("name"))
		if err != nil {
			return registryError(err)
		}
		hosts, _ := host.ReadStatuses(ctx, js)
		fi := info(d, hosts)
		fi.Manifest = &d.Function
		return c.JSON(http.StatusOK, fi)
	}
}

// deployer deploys one checked manifest (*deploy.Deployer).
type deployer interface {
	Deploy(ctx context.Context, fn manifests.Function) (manifests.Deployed, bool, error)
}

// newPutFunctionHandler serves PUT /admin/functions/{name}: the manifest as
// YAML or JSON, strictly decoded and validated, then deployed through the
// one deploy path (handler check, route clash 409); an unchanged manifest
// is a no-op.
func newPutFunctionHandler(dep deployer, limit int64) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := readBody(c.Request(), limit)
		if err != nil {
			return err
		}
		fn, err := manifests.Decode(c.Request().Header.Get("Content-Type"), body)
		if err != nil {
			return &runtime.Error{Status: http.StatusBadRequest, Code: "invalid_manifest", Msg: err.Error()}
		}
		name := c.Param("name")
		if fn.Metadata.Name != name {
			return runtime.BadRequest("metadata.name", "%q does not match the URL's %q", fn.Metadata.Name, name)
		}
		d, changed, err := dep.Deploy(c.Request().Context(), fn)
		switch {
		case errors.Is(err, deploy.ErrInvalid):
			return &runtime.Error{Status: http.StatusBadRequest, Code: "invalid_manifest", Msg: err.Error()}
		case errors.Is(err, deploy.ErrRouteConflict):
			return &runtime.Error{Status: http.StatusConflict, Code: "route_conflict", Msg: err.Error()}
		case errors.Is(err, deploy.ErrRegistry):
			return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "registry_unavailable", Msg: "cannot read deployed functions", Err: err}
		case err != nil:
			return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "registry_unavailable", Msg: "cannot store the manifest", Err: err}
		}
		return c.JSON(http.StatusOK, map[string]any{"name": name, "revision": d.Function.Revision(), "seq": d.Seq, "changed": changed})
	}
}

// newDeleteFunctionHandler serves DELETE /admin/functions/{name}.
func newDeleteFunctionHandler(reg functionStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := reg.Delete(c.Request().Context(), c.Param("name")); err != nil {
			return registryError(err)
		}
		return c.NoContent(http.StatusNoContent)
	}
}

func registryError(err error) error {
	if errors.Is(err, manifests.ErrNotDeployed) {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = "function " + msg[i+2:] + " is not deployed"
		}
		return &runtime.Error{Status: http.StatusNotFound, Code: "function_not_found", Msg: msg}
	}
	return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "registry_unavailable", Msg: "cannot read deployed functions", Err: err}
}
