// Package gateway is surge's HTTP front door: an Echo server that turns
// requests into NATS requests (sync routes) or JetStream publishes (async
// routes, 202), serves the admin API, and exposes health and metrics. Routes
// come from the deployed manifests and change live.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/surgefn/surge/internal/deploy"
	"github.com/surgefn/surge/internal/host"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// DefaultBodyLimit is the largest request body accepted unless configured.
const DefaultBodyLimit = 1 << 20

// DefaultReadTimeout bounds how long a request's headers and body may take
// to arrive unless configured: a client that sends its headers and then
// its body slowly (or never) holds a slot of the gateway's in-flight bound
// meanwhile.
const DefaultReadTimeout = 30 * time.Second

// DefaultMaxInFlight bounds the calls a gateway has in flight, all
// functions together, unless configured: with the default body limit the
// bodies alone stay under what one process should hold, and the adaptive
// per-function limits are far below it in normal operation.
const DefaultMaxInFlight = 10000

// Check is a named readiness probe.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Config is what a gateway needs. NC, JS, Logger and AdminToken are required.
type Config struct {
	NC         *nats.Conn
	JS         jetstream.JetStream
	Logger     *slog.Logger
	AdminToken string
	// Registry and Gatherer serve /metrics; nil uses a private registry.
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
	// BodyLimit bounds request bodies (413 beyond); default 1 MiB.
	BodyLimit int64
	// ReadTimeout bounds how long a request's headers and body may take
	// to arrive, counted from when the server starts reading the request
	// (the body's read fails with 408 body_timeout beyond, and the
	// connection closes); 0 means DefaultReadTimeout, a negative value no
	// bound. The headers alone have 10 s at most. Work the gateway does
	// before reading the body (a user token's check) counts too, so keep
	// it well above a few seconds.
	ReadTimeout time.Duration
	// Checks are extra /readyz probes (the store, a runtime host).
	Checks []Check
	// AccessLog logs one line per request at Info.
	AccessLog bool
	// Creds issues the NATS credentials of external functions
	// (POST /admin/functions/{name}/creds); nil answers 501.
	Creds CredsIssuer
	// Users verifies end-user tokens on routes with spec.http.auth: user
	// (*jwtauth.Verifier). Nil leaves such routes refused with a 503.
	Users UserVerifier
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client address sent to functions as Surge-Client-Ip.
	TrustedProxies TrustedProxies
	// Replicas is how many replicas the platform's streams and buckets get
	// when the gateway creates them (--replicas, resolved); 0 means 1.
	Replicas int
	// MaxInFlight bounds the calls in flight through this gateway, all
	// functions together (503 overloaded beyond); 0 means
	// DefaultMaxInFlight, a negative value no bound.
	MaxInFlight int
	// NoAdaptiveLimit turns off the adaptive per-function in-flight limit
	// of sync calls (overload.go): excess calls then queue at the hosts.
	NoAdaptiveLimit bool
	// Local, when set, is the runtime host of this process: a sync call
	// goes to one of its instances directly when one serves the function
	// with a slot free, and through the function's queue group otherwise.
	Local LocalCaller
}

// LocalCaller takes a call for an instance in this process (host.Host):
// run returns the reply the instance would have sent over NATS, its
// handler bounded by ctx; false sends the call through NATS. A call taken
// owns msg.
type LocalCaller interface {
	LocalCall(function string, msg *nats.Msg) (run func(ctx context.Context) *nats.Msg, ok bool)
}

// Validate reports missing required settings.
func (c *Config) Validate() error {
	var errs []error
	if c.NC == nil {
		errs = append(errs, errors.New("gateway config: NC is required"))
	}
	if c.JS == nil {
		errs = append(errs, errors.New("gateway config: JS is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("gateway config: Logger is required"))
	}
	if len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("gateway config: AdminToken of at least 16 characters is required"))
	}
	return errors.Join(errs...)
}

// Gateway is the HTTP server.
type Gateway struct {
	cfg     Config
	e       *echo.Echo
	table   atomic.Pointer[Table]
	reg     *manifests.Registry
	deploy  *deploy.Deployer
	calls   jetstream.KeyValue
	metrics *metrics
	cluster *clusterMetrics
	synced  chan struct{}
	limits  *limiters
	gate    *gate
	workers *workers // local calls' (Config.Local)

	mu  sync.Mutex
	fns map[string]manifests.Function
	srv *http.Server
}

// New builds the gateway and binds its buckets; it serves nothing until Serve.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Registry == nil {
		r := prometheus.NewRegistry()
		cfg.Registry, cfg.Gatherer = r, r
	}
	if err := host.EnsureInfra(ctx, cfg.JS, host.Replication{Replicas: cfg.Replicas, Logger: cfg.Logger}); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	reg, err := manifests.OpenRegistry(ctx, cfg.JS, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	calls, err := cfg.JS.KeyValue(ctx, wire.BucketCalls)
	if err != nil {
		return nil, fmt.Errorf("gateway: calls bucket: %w", err)
	}
	g := &Gateway{cfg: cfg, reg: reg, deploy: deploy.New(reg, host.CheckHandler), calls: calls, metrics: newMetrics(cfg.Registry),
		synced: make(chan struct{}), fns: map[string]manifests.Function{}, gate: &gate{max: int64(cfg.MaxInFlight)},
		workers: newWorkers(maxWorkers)}
	if !cfg.NoAdaptiveLimit {
		g.limits = newLimiters(nil)
		if err := cfg.Registry.Register(g.limits); err != nil {
			return nil, fmt.Errorf("gateway: limiter metrics: %w", err)
		}
	}
	g.cluster = newClusterMetrics(cfg.JS, g.deployed, cfg.Logger)
	if err := cfg.Registry.Register(g.cluster); err != nil {
		return nil, fmt.Errorf("gateway: cluster metrics: %w", err)
	}
	g.e = g.echo()
	empty, _ := Build(nil)
	empty.openapi = openAPIDoc(empty, g.e.Routes())
	g.table.Store(empty)
	return g, nil
}

func (g *Gateway) echo() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = newErrorHandler(g.cfg.Logger)
	e.Use(g.requestID, g.observe)
	e.GET("/healthz", newHealthHandler())
	e.GET("/readyz", newReadyHandler(g.readyChecks()))
	e.GET("/metrics", newMetricsHandler(g.cfg.Gatherer))
	e.GET("/console", newConsoleHandler())
	e.GET("/console/*", newConsoleHandler())
	e.GET("/openapi.json", newOpenAPIHandler(g.currentTable))

	admin := e.Group("/admin", newAuth(g.cfg.AdminToken))
	admin.GET("/functions", newListHandler(g.reg, g.cfg.JS))
	admin.GET("/functions/:name", newGetFunctionHandler(g.reg, g.cfg.JS))
	admin.PUT("/functions/:name", newPutFunctionHandler(g.deploy, g.cfg.BodyLimit))
	admin.DELETE("/functions/:name", newDeleteFunctionHandler(g.reg))
	admin.POST("/functions/:name/creds", newCredsHandler(g.reg, g.cfg.Creds))
	admin.GET("/dlq", newDLQListHandler(g.reg, g.cfg.JS))
	admin.POST("/dlq/:function/replay", newDLQReplayHandler(g.reg, g.cfg.JS, g.cfg.BodyLimit))
	admin.DELETE("/dlq/:function/:seq", newDLQDeleteHandler(g.reg, g.cfg.JS))
	admin.GET("/overview", newOverviewHandler(overviewDeps{reg: g.reg, streams: g.cfg.JS, now: time.Now,
		hosts: func(ctx context.Context) ([]wire.HostStatus, error) { return host.ReadStatuses(ctx, g.cfg.JS) }}))

	deps := invokeDeps{nc: g.cfg.NC, js: g.cfg.JS, calls: g.calls, table: g.currentTable, bodyLimit: g.cfg.BodyLimit,
		auth: newRouteAuth(g.cfg.Users, g.cfg.AdminToken), proxies: g.cfg.TrustedProxies, gate: g.gate, local: g.cfg.Local, sync: g.metrics.sync, workers: g.workers}
	e.POST("/function/:name", newByNameHandler(deps, false))
	e.POST("/async-function/:name", newByNameHandler(deps, true))
	e.GET("/calls/:id", newCallStatusHandler(g.calls, deps))
	e.Any("/*", newRouteHandler(deps))
	return e
}

func (g *Gateway) currentTable() *Table { return g.table.Load() }

// deployed returns the functions the registry holds, as last watched.
func (g *Gateway) deployed() []manifests.Function {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]manifests.Function, 0, len(g.fns))
	for _, f := range g.fns {
		out = append(out, f)
	}
	return out
}

func (g *Gateway) readyChecks() []Check {
	checks := []Check{
		{Name: "nats", Fn: func(context.Context) error {
			if s := g.cfg.NC.Status(); s != nats.CONNECTED {
				return fmt.Errorf("connection %s", s)
			}
			return nil
		}},
		{Name: "jetstream", Fn: func(ctx context.Context) error {
			_, err := g.cfg.JS.AccountInfo(ctx)
			return err
		}},
		{Name: "routes", Fn: func(context.Context) error {
			select {
			case <-g.synced:
				return nil
			default:
				return errors.New("deployed functions not loaded yet")
			}
		}},
		{Name: "streams", Fn: (&assetsCheck{info: jsStreamInfo(g.cfg.JS), assets: g.neededAssets, now: time.Now}).check},
	}
	return append(checks, g.cfg.Checks...)
}

// neededAssets lists the streams and buckets of the platform and of the
// deployed functions, for the "streams" readiness check.
func (g *Gateway) neededAssets() []asset {
	g.mu.Lock()
	fns := make([]manifests.Function, 0, len(g.fns))
	for _, f := range g.fns {
		fns = append(fns, f)
	}
	g.mu.Unlock()
	slices.SortFunc(fns, func(a, b manifests.Function) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	return neededAssets(fns)
}

// Handler returns the HTTP handler, for tests with httptest.
func (g *Gateway) Handler() http.Handler { return g.e }

// Serves reports whether the routing table in use holds revision rev of
// function name (tests wait on it after a deploy).
func (g *Gateway) Serves(name, rev string) bool {
	tg, ok := g.currentTable().Target(name)
	return ok && tg.Revision == rev
}

// Synced is closed once the routes of every deployed function are loaded.
func (g *Gateway) Synced() <-chan struct{} { return g.synced }

// Run keeps the routing table in step with the registry until ctx ends.
// It also follows the runtime hosts' heartbeats for /metrics.
func (g *Gateway) Run(ctx context.Context) error {
	var watchers sync.WaitGroup
	defer watchers.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchers.Go(func() { g.cluster.watchHosts(ctx) })
	var once sync.Once
	return g.reg.Watch(ctx, func(ev manifests.Event) {
		g.mu.Lock()
		switch {
		case ev.Synced:
		case ev.Function == nil:
			delete(g.fns, ev.Name)
		default:
			g.fns[ev.Name] = *ev.Function
		}
		if ev.Initial {
			g.mu.Unlock()
			return
		}
		fns := make([]manifests.Function, 0, len(g.fns))
		for _, f := range g.fns {
			fns = append(fns, f)
		}
		g.mu.Unlock()
		t, errs := Build(fns)
		for _, err := range errs {
			g.cfg.Logger.Error("route not installed", "err", err)
		}
		if g.cfg.Users == nil {
			for _, r := range t.Routes() {
				if r.Target.Auth == manifests.AuthUser && (ev.Synced || ev.Name == r.Target.Function) {
					g.cfg.Logger.Error("route refused with 503: it requires user auth and this gateway has no JWT verifier; start it with --jwt-secret-file or --jwks-url",
						"function", r.Target.Function, "route", r.Name)
				}
			}
		}
		if g.limits != nil {
			g.limits.attach(t)
		}
		t.openapi = openAPIDoc(t, g.e.Routes())
		g.table.Store(t)
		if ev.Synced {
			once.Do(func() { close(g.synced) })
			g.cfg.Logger.Info("routes loaded", "functions", len(fns), "routes", len(t.Routes()))
		} else {
			g.cfg.Logger.Info("routes updated", "function", ev.Name, "removed", ev.Function == nil, "routes", len(t.Routes()))
		}
	}, func(key string, err error) {
		g.cfg.Logger.Error("undecodable manifest in registry", "function", key, "err", err)
	})
}

// Serve accepts HTTP on ln until Shutdown.
func (g *Gateway) Serve(ln net.Listener) error {
	g.mu.Lock()
	// ReadTimeout is the connection's read deadline from when net/http
	// starts reading a request (the connection's accept, for its first)
	// until its body has been read: net/http clears it then (the read that
	// notices a client hanging up starts there), so it does not bound the
	// call. After a body read that failed it stays, so the rest of the body
	// is not waited for and the connection closes. Headers that take longer
	// than the header timeout get no answer: net/http closes the connection.
	readTimeout, headerTimeout := max(g.cfg.ReadTimeout, 0), 10*time.Second
	if readTimeout > 0 {
		headerTimeout = min(headerTimeout, readTimeout)
	}
	g.srv = &http.Server{Handler: g.e, ReadHeaderTimeout: headerTimeout, ReadTimeout: readTimeout,
		IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(g.cfg.Logger.Handler(), slog.LevelWarn)}
	srv := g.srv
	g.mu.Unlock()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops taking requests and waits for in-flight ones (or ctx).
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	srv := g.srv
	g.mu.Unlock()
	// Waiting workers end now; one running a call ends after it.
	defer g.workers.stop()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// requestID echoes X-Request-Id or makes one, and gives the request its
// hop of the caller's W3C trace (a new trace when the caller sent no valid
// traceparent), both on the response: the hop as traceresponse, which
// buildMsg sends on to the function as its traceparent.
func (g *Gateway) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		id := r.Header.Get(echo.HeaderXRequestID)
		if id == "" || len(id) > 128 {
			id = nuid.Next()
		}
		h := c.Response().Header()
		h[echo.HeaderXRequestID] = []string{id}
		h[wire.HeaderTraceresponse] = []string{wire.ChildTraceparent(r.Header.Get(wire.HeaderTraceparent))}
		return next(c)
	}
}

// observe records metrics and the access log, and recovers panics in the
// gateway itself (function panics come back as 500 replies).
func (g *Gateway) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		g.metrics.inFlight.Inc()
		defer func() {
			if r := recover(); r != nil {
				err = runtime.Internal(fmt.Errorf("gateway panic: %v", r))
			}
			if err != nil {
				c.Error(err)
				err = nil
			}
			g.metrics.inFlight.Dec()
			route := c.Get(routeKey)
			name, _ := route.(string)
			if name == "" {
				name = c.Path()
			}
			status := c.Response().Status
			elapsed := time.Since(start)
			g.metrics.observe(name, status, elapsed)
			if g.cfg.AccessLog {
				g.cfg.Logger.LogAttrs(c.Request().Context(), slog.LevelInfo, "http",
					slog.String("method", c.Request().Method), slog.String("path", c.Request().URL.Path),
					slog.Int("status", status), slog.Duration("took", elapsed),
					slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
					slog.String("trace_id", wire.TraceID(c.Response().Header().Get(wire.HeaderTraceresponse))))
			}
		}()
		return next(c)
	}
}

const routeKey = "surge.route"

// readBody reads at most limit bytes, 413 beyond.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	if r.ContentLength > 0 && r.ContentLength <= exactBody {
		// Read into a buffer of the declared length: the server's body
		// reader ends there, and a shorter body is an error.
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, unreadable(err)
		}
		return body, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, unreadable(err)
	}
	return body, nil
}

// exactBody is the largest declared body readBody allocates in full
// before reading it: a larger one grows with the bytes that arrive, so
// that clients declaring big bodies and sending none hold no more memory
// than they sent.
const exactBody = 64 << 10

func unreadable(err error) *runtime.Error {
	if errors.Is(err, os.ErrDeadlineExceeded) { // Config.ReadTimeout
		return &runtime.Error{Status: http.StatusRequestTimeout, Code: "body_timeout",
			Msg: "the request body did not arrive in time", Err: err}
	}
	e := runtime.BadRequest("body", "could not read the request body")
	e.Err = err
	return e
}

func tooLarge(limit int64) *runtime.Error {
	return &runtime.Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Msg: "request body exceeds the limit of " + strconv.FormatInt(limit, 10) + " bytes"}
}
