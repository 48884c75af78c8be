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
	"strings"
	"syscall"
	"time"
)

// HTTPConfig is what every HTTP scenario needs.
type HTTPConfig struct {
	// BaseURL is the gateway (or baseline server), e.g. http://127.0.0.1:8080.
	BaseURL string
	// Connections bounds the TCP connections (0: one per worker).
	Connections int
	// Timeout bounds one request.
	Timeout time.Duration
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
	return nil
}

// httpClient sends the requests of one scenario over a transport tuned for
// load: keep-alive, as many idle connections as workers (the default of 2
// per host would re-dial constantly), no compression, no proxy.
type httpClient struct {
	base string
	c    *http.Client
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
	return &httpClient{base: strings.TrimRight(cfg.BaseURL, "/"), c: &http.Client{Transport: tr, Timeout: cfg.Timeout}}, nil
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
	req := &http.Request{Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: noHeader, Host: u.Host}
	if body != nil {
		req.Header = jsonHeader
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

// getJSON GETs path and returns the body when the status is want.
func (h *httpClient) getJSON(ctx context.Context, path string, want int) ([]byte, error) {
	var buf bytes.Buffer
	if kind := h.do(ctx, http.MethodGet, path, nil, want, &buf); kind != "" {
		return nil, fmt.Errorf("GET %s: %s: %s", path, kind, strings.TrimSpace(buf.String()))
	}
	return buf.Bytes(), nil
}
