package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/surgefn/surge/manifests"
)

// ClusterMetrics is the cluster figures' collector on a clock of the
// test's, with the function that follows the hosts bucket, for the tests
// of package gateway_test.
func ClusterMetrics(js jetstream.JetStream, fns func() []manifests.Function, now func() time.Time) (prometheus.Collector, func(context.Context)) {
	c := newClusterMetrics(js, fns, slog.New(slog.DiscardHandler))
	c.now = now
	return c, c.watchHosts
}

// OwnRoutes lists the routes g's Echo serves itself as "METHOD path" in
// OpenAPI syntax, those a document can list.
func OwnRoutes(g *Gateway) []string {
	var out []string
	for _, r := range g.e.Routes() {
		if p, ok := echoPath(r); ok {
			out = append(out, r.Method+" "+p)
		}
	}
	return out
}
