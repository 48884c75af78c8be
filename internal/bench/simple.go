package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
)

// newRand is a per-worker random source seeded from the runtime's
// cryptographic seed, so runs and workers never repeat each other.
func newRand() *rand.Rand { return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }

// userBase picks the first user ID of a run's range: far from small IDs
// and random, so repeated runs against the same store do not collide.
func userBase() int64 { return 1_000_000_000_000 + rand.Int64N(1<<50) }

// EchoConfig configures the echo scenario.
type EchoConfig struct {
	// HTTP is the target.
	HTTP HTTPConfig
	// Path is the route (default /v1/echo); the baseline servers answer on any path.
	Path string
	// PayloadSize is the request body size in bytes (a JSON object).
	PayloadSize int
}

// Echo is the echo scenario: POST a body, expect 200 and the same body
// back. Against the gateway it is the round trip through NATS to a trivial
// function; against the baseline servers it measures their ceilings.
type Echo struct {
	cfg  EchoConfig
	c    *httpClient
	u    *url.URL
	body []byte
	bufs []bytes.Buffer
}

// NewEcho returns the echo scenario.
func NewEcho(cfg EchoConfig) (*Echo, error) {
	if cfg.Path == "" {
		cfg.Path = "/v1/echo"
	}
	if cfg.PayloadSize < 0 || cfg.PayloadSize > 1<<20 {
		return nil, fmt.Errorf("--payload-size must be 0 to 1048576 bytes, got %d", cfg.PayloadSize)
	}
	if err := cfg.HTTP.validate(); err != nil {
		return nil, err
	}
	return &Echo{cfg: cfg, body: payload(cfg.PayloadSize)}, nil
}

// payload is a JSON object of exactly n bytes when n >= 10 ({"p":""} plus
// padding), else the smallest object.
func payload(n int) []byte {
	b := []byte(`{"p":"`)
	for len(b) < n-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// Name implements Scenario.
func (*Echo) Name() string { return "echo" }

// Setup implements Scenario.
func (e *Echo) Setup(_ context.Context, workers int) (err error) {
	if e.c, err = newHTTPClient(e.cfg.HTTP, workers); err != nil {
		return err
	}
	e.bufs = make([]bytes.Buffer, workers)
	e.u, err = e.c.endpoint(e.cfg.Path)
	return err
}

// Do implements Scenario.
func (e *Echo) Do(ctx context.Context, w int) string {
	buf := &e.bufs[w]
	// With a JWT secret each worker is one signed-in user.
	if kind := e.c.sendAs(ctx, int64(w)+1, http.MethodPost, e.u, e.body, http.StatusOK, buf); kind != "" {
		return kind
	}
	if !bytes.Equal(buf.Bytes(), e.body) {
		return KindBadResponse
	}
	return ""
}

// Close implements Scenario.
func (e *Echo) Close() error {
	e.c.close()
	return nil
}

// SignInConfig configures the signin scenario.
type SignInConfig struct {
	// HTTP is the target.
	HTTP HTTPConfig
	// Users is the size of the run's random user range.
	Users int
}

// SignIn is the signin scenario: POST /v1/signin for users drawn at random
// from a range of its own; each user's first call of the day writes the
// store, the later ones are cache hits, as on a real morning.
type SignIn struct {
	cfg  SignInConfig
	c    *httpClient
	u    *url.URL
	base int64
	ws   []simpleWorker
}

type simpleWorker struct {
	rnd  *rand.Rand
	body []byte
	resp bytes.Buffer
}

// NewSignIn returns the signin scenario.
func NewSignIn(cfg SignInConfig) (*SignIn, error) {
	if cfg.Users < 1 {
		return nil, fmt.Errorf("--users must be at least 1, got %d", cfg.Users)
	}
	if err := cfg.HTTP.validate(); err != nil {
		return nil, err
	}
	return &SignIn{cfg: cfg, base: userBase()}, nil
}

// Name implements Scenario.
func (*SignIn) Name() string { return "signin" }

// Setup implements Scenario.
func (s *SignIn) Setup(_ context.Context, workers int) (err error) {
	if s.c, err = newHTTPClient(s.cfg.HTTP, workers); err != nil {
		return err
	}
	s.ws = make([]simpleWorker, workers)
	for i := range s.ws {
		s.ws[i].rnd = newRand()
	}
	s.u, err = s.c.endpoint("/v1/signin")
	return err
}

// Do implements Scenario.
func (s *SignIn) Do(ctx context.Context, w int) string {
	ws := &s.ws[w]
	user := s.base + ws.rnd.Int64N(int64(s.cfg.Users))
	ws.body = append(strconv.AppendInt(append(ws.body[:0], `{"user_id":`...), user, 10), '}')
	if kind := s.c.send(ctx, http.MethodPost, s.u, ws.body, http.StatusOK, &ws.resp); kind != "" {
		return kind
	}
	// The answer names the user: a cheap check that it is this call's.
	if !bytes.Contains(ws.resp.Bytes(), ws.body[1:len(ws.body)-1]) {
		return KindBadResponse
	}
	return ""
}

// Close implements Scenario.
func (s *SignIn) Close() error {
	s.c.close()
	return nil
}
