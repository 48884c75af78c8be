// Package testenv starts a real surge platform in-process for tests:
// embedded nats-server with JetStream on a random loopback port, data in
// t.TempDir(), the gateway on a random loopback port, all torn down with
// t.Cleanup.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/natsauth"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/store"
)

// Token is the admin token of every test platform.
const Token = "test-admin-token-0123456789"

// Env is a running platform plus a connection with surge's own
// credentials (every subject; tests read buckets and streams with it).
type Env struct {
	P    *platform.Platform
	URL  string
	NC   *nats.Conn
	JS   jetstream.JetStream
	Opts platform.Options
	HTTP *http.Client
}

// Logger returns a logger for tests: quiet unless SURGE_TEST_LOG=1.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("SURGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// childLogger is the logger of a child process: Logger's with
// SURGE_TEST_LOG=1, else its warnings and errors on stderr, which the
// parent test passes on and go test prints when the package fails (or
// with -v). A child's state dies with it, so its log is the only account
// of, say, the batches that kept failing before acked orders went
// missing. Each line names the child's pid: the hosts of one test share
// their helper's name.
func childLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SURGE_TEST_LOG") != "" {
		return Logger(t).With("pid", os.Getpid())
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("test", t.Name(), "pid", os.Getpid())
}

// Options returns the options Start uses, for tests that restart a platform.
func Options(t testing.TB) platform.Options {
	return platform.Options{
		DataDir:    t.TempDir(),
		HTTPAddr:   "127.0.0.1:0",
		NATSListen: "127.0.0.1:-1",
		Runtime:    true,
		// Few shards: a test stores little, and each file costs an fsync.
		StoreConfig: json.RawMessage(`{"shards":4}`),
		AdminToken:  Token,
		Logger:      Logger(t),
	}
}

// Start runs a platform with Options(t) changed by mutate (which may be nil).
func Start(t testing.TB, mutate func(*platform.Options)) *Env {
	t.Helper()
	o := Options(t)
	if mutate != nil {
		mutate(&o)
	}
	return StartWith(t, o)
}

// StartWith runs a platform with exactly o.
func StartWith(t testing.TB, o platform.Options) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := platform.Start(ctx, o)
	if err != nil {
		t.Fatalf("start platform: %v", err)
	}
	e := &Env{P: p, URL: p.HTTPURL(), Opts: o, HTTP: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() { e.Stop(t) })
	nc, err := e.TryConnect(p.NATSAuth())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	e.NC = nc
	if e.JS, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return e
}

// TryConnect connects to the platform's NATS as auth.
func (e *Env) TryConnect(auth natsauth.Client, opts ...nats.Option) (*nats.Conn, error) {
	ao, err := auth.Options()
	if err != nil {
		return nil, err
	}
	return nats.Connect(e.P.NATSURL(), append(ao, opts...)...)
}

// Connect connects with the credentials file creds (closed with the
// test), failing the test when the server refuses.
func (e *Env) Connect(t testing.TB, creds string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := e.TryConnect(natsauth.Client{CredsFile: creds}, opts...)
	if err != nil {
		t.Fatalf("connect with %s: %v", creds, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ClientCreds is the path of the embedded server's client.creds.
func (e *Env) ClientCreds(t testing.TB) string {
	t.Helper()
	if e.P.Authority() == nil {
		t.Fatal("no embedded NATS: no client.creds")
	}
	return e.P.Authority().ClientCreds()
}

// Store returns the platform's store as the domain D (store.Orders,
// store.SignIns, ...), failing the test when it has none or lacks D.
func Store[D any](t testing.TB, e *Env) D {
	t.Helper()
	d, err := store.As[D](e.P.Store())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Stop drains the platform (idempotent).
func (e *Env) Stop(t testing.TB) {
	if e.NC != nil {
		e.NC.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.P.Stop(ctx); err != nil {
		t.Errorf("stop platform: %v", err)
	}
}

// Response is an HTTP answer, body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
}

// ErrorCode returns the error envelope's code ("" when none).
func (r *Response) ErrorCode() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// Do sends an HTTP request to the gateway; headers are "Key: value" pairs.
func (e *Env) Do(t testing.TB, method, path string, body []byte, headers ...string) *Response {
	t.Helper()
	r, err := e.TryDo(method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// TryDo is Do returning the error, for use from goroutines.
func (e *Env) TryDo(method, path string, body []byte, headers ...string) (*Response, error) {
	req, err := http.NewRequest(method, e.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Deploy PUTs a YAML manifest through the admin API, fails unless 200,
// and waits until the new revision runs on this platform's runtime host.
func (e *Env) Deploy(t testing.TB, yaml string) {
	t.Helper()
	fns, err := manifests.Parse("test.yaml", []byte(yaml))
	if err != nil || len(fns) != 1 {
		t.Fatalf("test manifest: %v (%d docs)", err, len(fns))
	}
	r := e.Do(t, http.MethodPut, "/admin/functions/"+fns[0].Metadata.Name, []byte(yaml),
		"Authorization: Bearer "+Token, "Content-Type: application/yaml")
	if r.Status != http.StatusOK {
		t.Fatalf("deploy %s: %d %s", fns[0].Metadata.Name, r.Status, r.Body)
	}
	fn := fns[0]
	if gw := e.P.Gateway(); gw != nil {
		Eventually(t, 5*time.Second, "route of "+fn.Metadata.Name+" installed", func() bool {
			return gw.Serves(fn.Metadata.Name, fn.Revision())
		})
	}
	if e.P.Host() == nil || fn.Spec.Handler == manifests.HandlerExternal || fn.Spec.Replicas == 0 {
		return
	}
	Eventually(t, 5*time.Second, "deploy of "+fn.Metadata.Name+" applied", func() bool {
		st, ok := e.P.Host().Status().Functions[fn.Metadata.Name]
		return ok && st.Revision == fn.Revision()
	})
}

// Eventually polls cond every 10ms until it holds or within passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not within %s: %s", within, what)
}
