package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newHealthHandler serves GET /healthz: the process is up.
func newHealthHandler() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

// newReadyHandler serves GET /readyz: 200 only when every check answers
// within a second, else 503 naming the failing ones.
func newReadyHandler(checks []Check) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
		defer cancel()
		results := map[string]string{}
		ok := true
		for _, ch := range checks {
			if err := ch.Fn(ctx); err != nil {
				results[ch.Name] = err.Error()
				ok = false
				continue
			}
			results[ch.Name] = "ok"
		}
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
			c.Response().Header().Set("Retry-After", "1")
		}
		return c.JSON(status, map[string]any{"ready": ok, "checks": results})
	}
}

// newMetricsHandler serves GET /metrics in the Prometheus text format.
func newMetricsHandler(g prometheus.Gatherer) echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}
