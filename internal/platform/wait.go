package platform

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/internal/natsauth"
	"github.com/surgefn/surge/runtime/wire"
)

// Processes of a deployment start in any order: a gateway or runtime host
// started before its NATS or its store answers waits for them, retrying
// with a capped backoff and one log line per attempt, instead of exiting.
// What can never work (a bad flag, refused credentials, a keyspace without
// the schema) still fails at once.

// Bounds of the wait between two attempts: the first waits about
// retryMin, each next one twice as long, up to retryMax.
const (
	retryMin = 250 * time.Millisecond
	retryMax = 5 * time.Second
)

// retryDelay is the wait after failed attempt n (1 for the first): retryMin
// doubling up to retryMax, drawn from its upper half by jitter (0 <= jitter
// < 1), so that processes started together do not retry in step.
func retryDelay(n int, jitter float64) time.Duration {
	d := retryMin
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	d = min(d, retryMax)
	return d/2 + time.Duration(jitter*float64(d/2))
}

// errPermanent marks an error retrying cannot mend.
type errPermanent struct{ err error }

func (e errPermanent) Error() string { return e.err.Error() }
func (e errPermanent) Unwrap() error { return e.err }

// permanent wraps err so that waitFor gives up on it at once.
func permanent(err error) error { return errPermanent{err} }

// waitFor runs attempt until it succeeds, returns a permanent error, or
// ctx ends. After each failed attempt it logs one line, shows the failure
// as check's state on /readyz while it waits, and sleeps retryDelay. describe
// turns an attempt's error into that state, e.g. "connecting to
// nats://h:4222: connection refused".
func (p *Platform) waitFor(ctx context.Context, check string, attempt func(context.Context) error, describe func(error) string) error {
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			p.startup.set(check, "ok")
			if n > 1 {
				p.log.Info(check+" ready", "attempts", n)
			}
			return nil
		}
		var perm errPermanent
		if errors.As(err, &perm) {
			return perm.err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped while waiting for %s (%s): %w", check, describe(err), ctx.Err())
		}
		why := describe(err)
		wait := retryDelay(n, rand.Float64())
		p.startup.set(check, fmt.Sprintf("%s, attempt %d", why, n))
		p.log.Warn("waiting for "+check, "err", why, "attempt", n, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("stopped while waiting for %s (%s): %w", check, why, ctx.Err())
		}
	}
}

// connectWait connects to the external NATS, waiting while no server of
// the URL list answers. Refused credentials or TLS are permanent: waiting
// would not change them.
func (p *Platform) connectWait(ctx context.Context, name string) (*nats.Conn, error) {
	var nc *nats.Conn
	err := p.waitFor(ctx, "nats", func(context.Context) error {
		c, err := p.connect(name)
		if err != nil {
			// The embedded server is up by now: failing to reach it is
			// no matter of time.
			if p.ns != nil || isPermanentNATSError(err) {
				return permanent(err)
			}
			return err
		}
		nc = c
		return nil
	}, func(err error) string { return natsProblem(p.natsURL, err) })
	return nc, err
}

// isPermanentNATSError reports a connect error that another attempt would
// repeat: the server refused the credentials, or TLS failed (certificate,
// TLS required or not offered), or the URL does not parse. A refused or
// timed out connection, or a server going away during the handshake, is
// worth waiting for.
func isPermanentNATSError(err error) bool {
	for _, e := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired,
		nats.ErrSecureConnRequired, nats.ErrSecureConnWanted, nats.ErrBadSubject} {
		if errors.Is(err, e) {
			return true
		}
	}
	var (
		urlErr  *url.Error
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
		alert   tls.AlertError
		header  tls.RecordHeaderError
	)
	if errors.As(err, &urlErr) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &header) {
		return true
	}
	// nats.go reports some refusals as text only.
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"authorization violation", "authentication", "tls:", "x509:"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// natsProblem says why connecting to urls failed, for the log and /readyz.
// nats.go reports "no servers available" when every server of the list
// refused the connection.
func natsProblem(urls string, err error) string {
	u := natsauth.Redact(urls)
	if errors.Is(err, nats.ErrNoServers) {
		return "connecting to " + u + ": connection refused"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return "connecting to " + u + ": " + opErr.Err.Error()
	}
	return "connecting to " + u + ": " + strings.TrimPrefix(err.Error(), "--nats "+u+": ")
}

// startupServer answers HTTP on the gateway's listener while Start waits:
// /healthz says the process is alive, /readyz is 503 naming what it waits
// for, every other path is 503 with Retry-After. handOff stops it and
// leaves the listener to the gateway.
type startupServer struct {
	ln   *handoffListener
	srv  *http.Server
	done chan struct{}

	mu     sync.Mutex
	checks []startupCheck
}

type startupCheck struct{ name, state string }

// handoffListener lets one http.Server stop accepting on a listener that
// another then serves: Close interrupts a blocked Accept with a deadline
// instead of closing the socket, so no connection is refused in between.
type handoffListener struct {
	net.Listener
	deadline interface{ SetDeadline(time.Time) error }
	closed   atomic.Bool
}

func (l *handoffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && l.closed.Load() {
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *handoffListener) Close() error {
	if !l.closed.Swap(true) {
		return l.deadline.SetDeadline(time.Now())
	}
	return nil
}

// startStartup serves the startup answers on ln until handOff; nil when ln
// cannot be handed off (it has no deadline), and then nothing answers
// until the gateway does, as before.
func startStartup(ln net.Listener, log *slog.Logger, pending ...string) *startupServer {
	d, ok := ln.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return nil
	}
	s := &startupServer{ln: &handoffListener{Listener: ln, deadline: d}, done: make(chan struct{})}
	for _, name := range pending {
		s.checks = append(s.checks, startupCheck{name, "not checked yet"})
	}
	// It reads no bodies, and net/http drains a body the handler did not
	// read before it sends the answer: ReadTimeout bounds that, so a client
	// that declares a body and sends none neither waits for good nor holds
	// handOff up.
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: startupReadTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(s.ln)
	}()
	return s
}

// set records check's state ("ok" once it passed); nil-safe.
func (s *startupServer) set(name, state string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.checks {
		if s.checks[i].name == name {
			s.checks[i].state = state
			return
		}
	}
	s.checks = append(s.checks, startupCheck{name, state})
}

// waiting is the first check not passed yet, as "name: state".
func (s *startupServer) waiting() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.checks {
		if c.state != "ok" {
			return c.name + ": " + c.state
		}
	}
	return "starting"
}

func (s *startupServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/healthz" {
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
		return
	}
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	if r.URL.Path == "/readyz" {
		s.mu.Lock()
		checks := make(map[string]string, len(s.checks))
		for _, c := range s.checks {
			checks[c.name] = c.state
		}
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": false, "checks": checks})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]wire.ErrorBody{"error": {Code: wire.CodeForStatus(http.StatusServiceUnavailable),
		Message: "surge is starting; waiting for " + s.waiting()}})
}

// handOff stops the startup answers and gives the listener back, ready
// for the gateway to serve. A request in flight gets its answer first, for
// up to handOffWait; then its connection is closed.
func (s *startupServer) handOff(ctx context.Context) error {
	if s == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, handOffWait)
	defer cancel()
	err := s.srv.Shutdown(sctx) // closes s.ln: the blocked Accept returns
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = s.srv.Close()
	}
	<-s.done
	if derr := s.ln.deadline.SetDeadline(time.Time{}); derr != nil {
		return errors.Join(err, derr)
	}
	return err
}

// handOffWait bounds how long handOff waits for the startup answers in
// flight.
const handOffWait = 5 * time.Second

// startupReadTimeout is the startup server's ReadTimeout; tests lower it.
var startupReadTimeout = 10 * time.Second

// close stops the startup answers and the connections they hold, for a
// Start that fails or a Stop during the wait.
func (s *startupServer) close() {
	if s == nil {
		return
	}
	_ = s.srv.Close()
	<-s.done
}
