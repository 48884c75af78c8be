package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/internal/natsauth"
)

// Baseline kinds: what `make bench` measures the machine's ceilings with.
const (
	// BaselineEcho is a bare Echo server whose handler echoes the body.
	BaselineEcho = "echo"
	// BaselineNATSEcho is an Echo server whose handler does a NATS request
	// to a subject an in-process responder answers with the body: the
	// minimal version of what the gateway and a function do.
	BaselineNATSEcho = "nats-echo"
)

// BaselineConfig configures a baseline server.
type BaselineConfig struct {
	// Kind is BaselineEcho or BaselineNATSEcho.
	Kind string
	// HTTPAddr is the listen address (port 0: any free port).
	HTTPAddr string
	// NATSURL is the NATS the nats-echo kind uses.
	NATSURL string
	// Auth authenticates to it.
	Auth natsauth.Client
	// Subject is the responder's subject (default bench.echo).
	Subject string
	// Timeout bounds one NATS request (default 2s, like a function's).
	Timeout time.Duration
}

// Baseline is a running baseline server. It answers any POST path with the
// request body and GET /healthz with 200.
type Baseline struct {
	srv  *http.Server
	ln   net.Listener
	reqC *nats.Conn // the handler's requests (like the gateway's connection)
	resC *nats.Conn // the responder (like a runtime host's connection)
	done sync.WaitGroup
}

// StartBaseline starts a baseline server and returns once it listens.
func StartBaseline(cfg BaselineConfig) (*Baseline, error) {
	if cfg.Subject == "" {
		cfg.Subject = "bench.echo"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	b := &Baseline{}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	switch cfg.Kind {
	case BaselineEcho:
		e.POST("/*", func(c echo.Context) error {
			body, err := io.ReadAll(c.Request().Body)
			if err != nil {
				return err
			}
			return c.Blob(http.StatusOK, c.Request().Header.Get(echo.HeaderContentType), body)
		})
	case BaselineNATSEcho:
		if err := b.connect(cfg); err != nil {
			b.Close(context.Background())
			return nil, err
		}
		e.POST("/*", natsEchoHandler(b.reqC, cfg))
	default:
		return nil, fmt.Errorf("--kind %q: want %s or %s", cfg.Kind, BaselineEcho, BaselineNATSEcho)
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		b.Close(context.Background())
		return nil, fmt.Errorf("--http %s: %w", cfg.HTTPAddr, err)
	}
	b.ln = ln
	b.srv = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		_ = b.srv.Serve(ln)
	}()
	return b, nil
}

func (b *Baseline) connect(cfg BaselineConfig) error {
	if cfg.NATSURL == "" {
		return errors.New("--nats URL is required for the nats-echo baseline")
	}
	var err error
	if b.reqC, err = cfg.Auth.Connect(cfg.NATSURL, nats.Name("surge-bench-baseline-requester")); err != nil {
		return err
	}
	if b.resC, err = cfg.Auth.Connect(cfg.NATSURL, nats.Name("surge-bench-baseline-responder")); err != nil {
		return err
	}
	if _, err := b.resC.QueueSubscribe(cfg.Subject, "bench", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		return err
	}
	return b.resC.Flush()
}

func natsEchoHandler(nc *nats.Conn, cfg BaselineConfig) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.Context(), cfg.Timeout)
		defer cancel()
		msg, err := nc.RequestWithContext(ctx, cfg.Subject, body)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return echo.NewHTTPError(http.StatusServiceUnavailable, "no responders")
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			return echo.NewHTTPError(http.StatusGatewayTimeout, "timeout")
		case err != nil:
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		return c.Blob(http.StatusOK, r.Header.Get(echo.HeaderContentType), msg.Data)
	}
}

// URL is the server's base URL.
func (b *Baseline) URL() string { return "http://" + b.ln.Addr().String() }

// Close stops the server and the NATS connections.
func (b *Baseline) Close(ctx context.Context) error {
	var err error
	if b.srv != nil {
		err = b.srv.Shutdown(ctx)
		b.done.Wait()
	}
	for _, nc := range []*nats.Conn{b.reqC, b.resC} {
		if nc != nil {
			nc.Close()
		}
	}
	return err
}
