package gateway

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/wire"
)

// newHealthHandler serves GET /healthz: the process is up.
func newHealthHandler() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

// newReadyHandler serves GET /readyz: 200 only when every check answers
// within a second, else 503 naming the failing ones. The checks run at
// once, each with the whole second: a JetStream that does not answer
// must not show as a store that timed out.
func newReadyHandler(checks []Check) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
		defer cancel()
		errs := make([]error, len(checks))
		var wg sync.WaitGroup
		for i, ch := range checks {
			wg.Go(func() { errs[i] = ch.Fn(ctx) })
		}
		wg.Wait()
		results := make(map[string]string, len(checks))
		ok := true
		for i, ch := range checks {
			if errs[i] != nil {
				results[ch.Name] = errs[i].Error()
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

// How /readyz looks at the streams and buckets functions need: each probe
// is one stream info request with probeTimeout, at most probeParallel at
// once, and a result is reused for assetsTTL, so that load balancers
// polling /readyz cost JetStream little.
const (
	assetsTTL     = time.Second
	probeTimeout  = 500 * time.Millisecond
	probeParallel = 8
)

// asset is a JetStream stream surge needs: a stream, or a KV bucket (whose
// stream is KV_<bucket>).
type asset struct {
	bucket bool
	name   string
}

func (a asset) stream() string {
	if a.bucket {
		return "KV_" + a.name
	}
	return a.name
}

func (a asset) String() string {
	if a.bucket {
		return "bucket " + a.name
	}
	return "stream " + a.name
}

// neededAssets lists, without repeats, the streams and buckets of the
// platform itself (the registry, the async calls, the DLQ) and those the
// functions fns need: a stream trigger's stream, the streams under
// spec.publishes, and the buckets under spec.kv of the functions surge runs
// (an external function's buckets are its own business).
func neededAssets(fns []manifests.Function) []asset {
	out := []asset{{bucket: true, name: manifests.Bucket}, {bucket: true, name: wire.BucketCalls},
		{name: wire.StreamCalls}, {name: wire.StreamDLQ}}
	seen := map[asset]bool{}
	for _, a := range out {
		seen[a] = true
	}
	add := func(a asset) {
		if a.name != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, fn := range fns {
		add(asset{name: fn.Spec.Trigger.Stream})
		for _, p := range fn.Spec.Publishes {
			add(asset{name: p.Stream})
		}
		if fn.Spec.Handler != manifests.HandlerExternal {
			for _, kv := range fn.Spec.KV {
				add(asset{bucket: true, name: kv.Bucket})
			}
		}
	}
	return out
}

// streamInfo asks JetStream about one stream.
type streamInfo func(ctx context.Context, stream string) (*jetstream.StreamInfo, error)

func jsStreamInfo(js jetstream.JetStream) streamInfo {
	return func(ctx context.Context, name string) (*jetstream.StreamInfo, error) {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return nil, err
		}
		return s.CachedInfo(), nil
	}
}

// assetsCheck is the "streams" readiness check: it fails, naming each one,
// while a stream or bucket in use has no leader (on a cluster, too few of
// its replicas are up to elect one), does not answer, or is gone.
type assetsCheck struct {
	info   streamInfo
	assets func() []asset
	now    func() time.Time

	mu   sync.Mutex
	at   time.Time // of last; zero before the first probe
	last error
}

func (c *assetsCheck) check(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && c.now().Sub(c.at) < assetsTTL {
		return c.last
	}
	// The result is cached for every caller: one client hanging up must
	// not make it "context canceled" for the others.
	c.last = c.probe(context.WithoutCancel(ctx))
	c.at = c.now()
	return c.last
}

func (c *assetsCheck) probe(ctx context.Context) error {
	assets := c.assets()
	problems := make([]string, len(assets))
	sem := make(chan struct{}, probeParallel)
	var wg sync.WaitGroup
	for i, a := range assets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			info, err := c.info(pctx, a.stream())
			switch {
			case errors.Is(err, jetstream.ErrStreamNotFound):
				problems[i] = a.String() + ": not found"
			case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
				problems[i] = a.String() + ": no answer within " + probeTimeout.String()
			case err != nil:
				problems[i] = a.String() + ": " + err.Error()
			case info.Cluster != nil && info.Cluster.Leader == "":
				problems[i] = a.String() + ": no leader"
			}
		}()
	}
	wg.Wait()
	problems = slices.DeleteFunc(problems, func(p string) bool { return p == "" })
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}
