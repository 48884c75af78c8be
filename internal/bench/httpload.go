package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// HTTPConfig is what every HTTP scenario needs.
type HTTPConfig struct {
	// BaseURL is the gateway (or baseline server), e.g. http://127.0.0.1:8080.
	BaseURL string
	// Connections bounds the TCP connections (0: one per worker).
	Connections int
	// Timeout bounds one request.
	Timeout time.Duration
	// JWTSecret, when set, signs an HS256 end-user token per simulated
	// user, sent as "Authorization: Bearer" by the scenarios' requests
	// (routes with auth: user; --jwt-secret-file). Verification reads
	// stay unauthenticated.
	JWTSecret []byte
}

func (c *HTTPConfig) validate() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--gateway %q: want an http:// or https:// URL", c.BaseURL)
	}
	if c.Connections < 0 {
		return fmt.Errorf("--connections must not be negative, got %d", c.Connections)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", c.Timeout)
	}
	if c.JWTSecret != nil && len(c.JWTSecret) < 32 {
		return fmt.Errorf("--jwt-secret-file: the secret is %d bytes, HS256 needs at least 32", len(c.JWTSecret))
	}
	return nil
}

// httpClient sends the requests of one scenario over a transport tuned for
// load: keep-alive, as many idle connections as workers (the default of 2
// per host would re-dial constantly), no compression, no proxy.
type httpClient struct {
	base   string
	c      *http.Client
	secret []byte
	users  sync.Map // int64 -> http.Header with that user's token
}

func newHTTPClient(cfg HTTPConfig, workers int) (*httpClient, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	conns := cfg.Connections
	if conns == 0 {
		conns = workers
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		DisableCompression:    true,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
	return &httpClient{base: strings.TrimRight(cfg.BaseURL, "/"), c: &http.Client{Transport: tr, Timeout: cfg.Timeout},
		secret: cfg.JWTSecret}, nil
}

func (h *httpClient) close() {
	if h != nil {
		h.c.CloseIdleConnections()
	}
}

// jsonHeader is the header of every request with a body, noHeader of the
// others. Requests share them: nothing on the client side writes to a
// request's header.
var (
	jsonHeader = http.Header{"Content-Type": []string{"application/json"}}
	noHeader   = http.Header{}
)

// bodyReader is a request body without the extra io.NopCloser allocation.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

// endpoint is the parsed URL of a path on the target, made once so the
// hot path does not parse a URL per request.
func (h *httpClient) endpoint(path string) (*url.URL, error) {
	return url.Parse(h.base + path)
}

// do sends one request to path and reads the answer into resp (reset
// first). It returns "" when the status is want, else the error kind.
func (h *httpClient) do(ctx context.Context, method, path string, body []byte, want int, resp *bytes.Buffer) string {
	u, err := h.endpoint(path)
	if err != nil {
		return KindOther
	}
	return h.send(ctx, method, u, body, want, resp)
}

// send is do with a parsed URL. The request is built by hand: what
// http.NewRequest adds (URL parsing, a header map per request, GetBody for
// redirects) is cost without use here.
func (h *httpClient) send(ctx context.Context, method string, u *url.URL, body []byte, want int, resp *bytes.Buffer) string {
	return h.sendAs(ctx, 0, method, u, body, want, resp)
}

// sendAs is send on behalf of user: with a JWT secret, the request carries
// that user's token (signed once per user and client).
func (h *httpClient) sendAs(ctx context.Context, user int64, method string, u *url.URL, body []byte, want int, resp *bytes.Buffer) string {
	req := &http.Request{Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: noHeader, Host: u.Host}
	if body != nil {
		req.Header = jsonHeader
	}
	if h.secret != nil && user > 0 {
		req.Header = h.userHeader(user)
	}
	if body != nil {
		br := &bodyReader{}
		br.Reset(body)
		req.Body = br
		req.ContentLength = int64(len(body))
	}
	res, err := h.c.Do(req.WithContext(ctx))
	if err != nil {
		return ErrKind(err)
	}
	resp.Reset()
	_, err = resp.ReadFrom(res.Body)
	res.Body.Close()
	if err != nil {
		return ErrKind(err)
	}
	if res.StatusCode != want {
		return HTTPKind(res.StatusCode)
	}
	return ""
}

// tokenTTL is how long a bench token is valid: longer than any run.
const tokenTTL = 24 * time.Hour

// userHeader is the JSON header with user's bearer token.
func (h *httpClient) userHeader(user int64) http.Header {
	if v, ok := h.users.Load(user); ok {
		return v.(http.Header)
	}
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: strconv.FormatInt(user, 10),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(tokenTTL))}).SignedString(h.secret)
	if err != nil {
		panic(err) // HS256 with a non-empty key cannot fail
	}
	hdr := http.Header{"Content-Type": []string{"application/json"}, "Authorization": []string{"Bearer " + tok}}
	v, _ := h.users.LoadOrStore(user, hdr)
	return v.(http.Header)
}

// ErrKind classifies a transport error: timeout, conn (refused, reset,
// closed mid-answer) or other.
func ErrKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed):
		return KindConn
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return KindConn
	}
	return KindOther
}

// getJSON GETs path and returns the body when the status is want. A read
// refused as overloaded (the gateway sheds while the platform works off
// what a run left) is tried again a little later, as its Retry-After asks.
func (h *httpClient) getJSON(ctx context.Context, path string, want int) ([]byte, error) {
	var buf bytes.Buffer
	for attempt := 1; ; attempt++ {
		buf.Reset()
		kind := h.do(ctx, http.MethodGet, path, nil, want, &buf)
		if kind == "" {
			return buf.Bytes(), nil
		}
		overloaded := kind == HTTPKind(http.StatusServiceUnavailable) && bytes.Contains(buf.Bytes(), []byte(`"overloaded"`))
		if !overloaded || attempt == 100 {
			return nil, fmt.Errorf("GET %s: %s: %s", path, kind, strings.TrimSpace(buf.String()))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("GET %s: %s: %s", path, kind, strings.TrimSpace(buf.String()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
