// Package jwtauth verifies the end-user JWTs the gateway requires on routes
// with spec.http.auth: user. A verifier holds either an HS256 secret or a
// JWKS URL (RS256 and ES256 keys, fetched and refreshed, see jwks.go),
// accepts only those algorithms, enforces exp (required) and nbf with a
// small leeway on an injected clock, checks iss and aud when configured,
// and returns the sub claim as the user id: a decimal positive int64.
//
// Signature and claim checks are github.com/golang-jwt/jwt/v5's; this
// package chooses the options, finds the key and reads sub.
package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/surgefn/surge/runtime"
)

// Defaults of a Config.
const (
	// DefaultLeeway is the clock skew allowed on exp and nbf.
	DefaultLeeway = 30 * time.Second
	// DefaultRefresh is how old a fetched key set may get before the next
	// verification refreshes it in the background.
	DefaultRefresh = 15 * time.Minute
	// DefaultMinRefresh is how often at most a token with an unknown kid
	// makes the verifier fetch the key set again.
	DefaultMinRefresh = 10 * time.Second
	// MinSecretLen is the shortest HS256 secret accepted: 256 bits, the
	// size of the hash (RFC 7518 section 3.2).
	MinSecretLen = 32
	// MaxTokenLen bounds the Authorization value parsed at all.
	MaxTokenLen = 8 << 10
	// DefaultCacheSize is how many verified tokens are remembered.
	DefaultCacheSize = 16384
	// cacheTTL is how long a verified token is remembered: it bounds how
	// long a key removed from the JWKS still counts for tokens it signed
	// that were seen just before.
	cacheTTL = time.Minute
)

// The algorithms each kind of key verifies; nothing else is accepted (no
// "none", and no HS256 token checked against a public key).
var (
	secretMethods = []string{jwt.SigningMethodHS256.Alg()}
	jwksMethods   = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}
)

// Sentinel errors.
var (
	// ErrInvalidToken wraps every rejected token (see TokenError).
	ErrInvalidToken = errors.New("invalid token")
	// ErrConfig wraps every problem of a Config.
	ErrConfig = errors.New("invalid JWT configuration")
)

// TokenError is a rejected token: Reason is a short phrase safe to show
// the caller ("expired", "wrong issuer"); Err is the cause, for the log.
type TokenError struct {
	Reason string
	Err    error
}

// Error formats the rejection with its cause.
func (e *TokenError) Error() string {
	if e.Err == nil {
		return "invalid token: " + e.Reason
	}
	return "invalid token: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns ErrInvalidToken and the cause.
func (e *TokenError) Unwrap() []error { return []error{ErrInvalidToken, e.Err} }

// Config says how to verify tokens. Exactly one of Secret and JWKSURL is set.
type Config struct {
	// Secret is the HS256 key, at least MinSecretLen bytes.
	Secret []byte
	// JWKSURL is where the RS256/ES256 public keys are published.
	JWKSURL string
	// Issuer and Audience, when set, must match iss and one of aud.
	Issuer   string
	Audience string
	// Leeway is the clock skew allowed on exp and nbf (DefaultLeeway).
	Leeway time.Duration
	// Clock tells the time of exp and nbf checks and of key refreshes
	// (runtime.SystemClock when nil).
	Clock runtime.Clock
	// Client fetches the key set (a client with a 5s timeout when nil).
	Client *http.Client
	// Refresh and MinRefresh pace key set fetches (DefaultRefresh,
	// DefaultMinRefresh).
	Refresh    time.Duration
	MinRefresh time.Duration
	// Logger reports key set fetches that failed (slog.Default when nil).
	Logger *slog.Logger
	// CacheSize bounds the verified tokens remembered for a minute, so a
	// client sending the same token again costs a map lookup and an exp
	// check instead of a signature check (DefaultCacheSize; negative
	// disables the cache).
	CacheSize int
}

// Validate reports every problem of the configuration, each wrapping ErrConfig.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	switch {
	case len(c.Secret) == 0 && c.JWKSURL == "":
		bad("a secret or a JWKS URL is required")
	case len(c.Secret) > 0 && c.JWKSURL != "":
		bad("a secret and a JWKS URL are mutually exclusive")
	case c.JWKSURL != "":
		if err := CheckJWKSURL(c.JWKSURL); err != nil {
			errs = append(errs, err)
		}
	case len(c.Secret) < MinSecretLen:
		bad("the HS256 secret is %d bytes, shorter than %d", len(c.Secret), MinSecretLen)
	}
	if c.Leeway < 0 || c.Refresh < 0 || c.MinRefresh < 0 {
		bad("leeway and refresh intervals must not be negative")
	}
	return errors.Join(errs...)
}

// CheckJWKSURL reports a JWKS URL that is not an absolute http or https URL.
func CheckJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: JWKS URL: %w", ErrConfig, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%w: JWKS URL %q: must be an absolute http or https URL", ErrConfig, raw)
	}
	// Whoever answers the JWKS URL decides which tokens are valid: over
	// plain http anyone on the path could add a key. http is for a
	// provider on this machine only.
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%w: JWKS URL %q: must be https (http only for localhost or a loopback address)", ErrConfig, raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Verifier checks tokens. Safe for concurrent use.
type Verifier struct {
	parser *jwt.Parser
	secret []byte
	keys   *keySet // nil with a secret
	clock  runtime.Clock
	leeway time.Duration
	// seen holds tokens verified in the last cacheTTL, by their exact
	// text: only a byte-identical token hits, and its exp is checked again.
	seen *runtime.Cache[string, verified]
}

// verified is what a checked token established.
type verified struct {
	user int64
	exp  time.Time
}

// New returns a verifier for cfg. With a JWKS URL it fetches the key set
// once; a failure is logged, not returned, so a briefly unreachable
// identity provider does not keep the gateway down: tokens are refused
// (401) until a later fetch succeeds.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Clock == nil {
		cfg.Clock = runtime.SystemClock{}
	}
	methods := secretMethods
	if cfg.JWKSURL != "" {
		methods = jwksMethods
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Clock.Now),
		jwt.WithExpirationRequired(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v := &Verifier{parser: jwt.NewParser(opts...), secret: cfg.Secret, clock: cfg.Clock, leeway: cfg.Leeway}
	switch {
	case cfg.CacheSize == 0:
		v.seen = runtime.NewCache[string, verified](cacheTTL, DefaultCacheSize, cfg.Clock)
	case cfg.CacheSize > 0:
		v.seen = runtime.NewCache[string, verified](cacheTTL, cfg.CacheSize, cfg.Clock)
	}
	if cfg.JWKSURL != "" {
		v.keys = newKeySet(cfg)
		if err := v.keys.fetch(ctx); err != nil {
			v.keys.log.Warn("JWKS not loaded; user tokens are refused until it is", "url", cfg.JWKSURL, "err", err)
		}
	}
	return v, nil
}

// Verify checks token (the part after "Bearer ") and returns its sub claim
// as the user id. Every rejection is a *TokenError.
func (v *Verifier) Verify(ctx context.Context, token string) (int64, error) {
	if len(token) > MaxTokenLen {
		return 0, &TokenError{Reason: "longer than " + strconv.Itoa(MaxTokenLen) + " bytes"}
	}
	if v.seen != nil {
		if hit, ok := v.seen.Get(token); ok {
			if !v.clock.Now().Before(hit.exp.Add(v.leeway)) {
				return 0, &TokenError{Reason: "expired", Err: jwt.ErrTokenExpired}
			}
			return hit.user, nil
		}
	}
	var claims jwt.RegisteredClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) { return v.key(ctx, t) })
	if err != nil {
		return 0, &TokenError{Reason: reason(err), Err: err}
	}
	id, ok := parseUserID(claims.Subject)
	if !ok {
		return 0, &TokenError{Reason: "sub must be a positive decimal user id"}
	}
	if v.seen != nil {
		v.seen.Put(token, verified{user: id, exp: claims.ExpiresAt.Time}) // exp is required, so set
	}
	return id, nil
}

// key finds the key that must have signed t; the parser already checked
// that t's alg is one this verifier accepts.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	if v.keys == nil {
		return v.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	return v.keys.lookup(ctx, kid, t.Method.Alg())
}

// reason names why the parser refused a token, in words for the caller.
func reason(err error) string {
	for _, r := range []struct {
		err  error
		text string
	}{
		{jwt.ErrTokenMalformed, "malformed"},
		{errUnknownKey, "unknown signing key"},
		{jwt.ErrTokenUnverifiable, "cannot be verified"},
		{jwt.ErrTokenSignatureInvalid, "bad signature or algorithm"},
		{jwt.ErrTokenExpired, "expired"},
		{jwt.ErrTokenNotValidYet, "not valid yet"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{jwt.ErrTokenRequiredClaimMissing, "missing a required claim (exp, or iss and aud when configured)"},
	} {
		if errors.Is(err, r.err) {
			return r.text
		}
	}
	return "rejected"
}

// parseUserID reads sub as a user id: decimal digits without sign or
// leading zero, a positive int64.
func parseUserID(sub string) (int64, bool) {
	if sub == "" || sub[0] < '1' || sub[0] > '9' {
		return 0, false
	}
	for i := 1; i < len(sub); i++ {
		if sub[i] < '0' || sub[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(sub, 10, 64)
	return n, err == nil
}
