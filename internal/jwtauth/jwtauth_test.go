package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

var (
	t0     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	secret = []byte("0123456789abcdef0123456789abcdef")
)

// claims are valid at t0 for issuer "https://id.example" and audience "surge".
func claims(sub string) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{Subject: sub, Issuer: "https://id.example", Audience: jwt.ClaimStrings{"surge"},
		IssuedAt: jwt.NewNumericDate(t0.Add(-time.Minute)), NotBefore: jwt.NewNumericDate(t0.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour))}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned builds a token with any header and claims and the given signature.
func unsigned(header, claims map[string]any, sig string) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + sig
}

func newSecretVerifier(t testing.TB, clk *clock) *Verifier {
	t.Helper()
	v, err := New(context.Background(), Config{Secret: secret, Issuer: "https://id.example", Audience: "surge", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var rsaKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func TestVerifySecret(t *testing.T) {
	for _, cache := range []int{0, -1} {
		t.Run(map[int]string{0: "cached", -1: "uncached"}[cache], func(t *testing.T) { testVerifySecret(t, cache) })
	}
}

func testVerifySecret(t *testing.T, cacheSize int) {
	clk := &clock{now: t0}
	v, err := New(context.Background(), Config{Secret: secret, Issuer: "https://id.example", Audience: "surge", Clock: clk, CacheSize: cacheSize})
	if err != nil {
		t.Fatal(err)
	}
	hs := func(c jwt.RegisteredClaims) string { return sign(t, jwt.SigningMethodHS256, secret, "", c) }
	edit := func(f func(*jwt.RegisteredClaims)) jwt.RegisteredClaims { c := claims("42"); f(&c); return c }
	rsaPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	valid := hs(claims("42"))
	tests := []struct {
		name       string
		token      string
		skew       time.Duration // clock moved by this before verifying
		wantID     int64
		wantReason string
	}{
		{name: "valid", token: valid, wantID: 42},
		{name: "valid just past exp within leeway", token: valid, skew: time.Hour + 29*time.Second, wantID: 42},
		{name: "empty", token: "", wantReason: "malformed"},
		{name: "malformed", token: "not.a.jwt", wantReason: "malformed"},
		{name: "two parts", token: "abc.def", wantReason: "malformed"},
		{name: "too long", token: strings.Repeat("a", MaxTokenLen+1), wantReason: "longer than 8192 bytes"},
		{name: "bad signature", token: valid[:len(valid)-4] + "AAAA", wantReason: "bad signature or algorithm"},
		{name: "other secret", token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-long!"), "", claims("42")),
			wantReason: "bad signature or algorithm"},
		{name: "wrong issuer", token: hs(edit(func(c *jwt.RegisteredClaims) { c.Issuer = "https://evil.example" })), wantReason: "wrong issuer"},
		{name: "no issuer", token: hs(edit(func(c *jwt.RegisteredClaims) { c.Issuer = "" })),
			wantReason: "missing a required claim (exp, or iss and aud when configured)"},
		{name: "wrong audience", token: hs(edit(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} })), wantReason: "wrong audience"},
		{name: "expired", token: valid, skew: time.Hour + 31*time.Second, wantReason: "expired"},
		{name: "no exp", token: hs(edit(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })), wantReason: "missing a required claim (exp, or iss and aud when configured)"},
		{name: "not yet valid", token: hs(edit(func(c *jwt.RegisteredClaims) { c.NotBefore = jwt.NewNumericDate(t0.Add(31 * time.Second)) })),
			wantReason: "not valid yet"},
		{name: "nbf within leeway", token: hs(edit(func(c *jwt.RegisteredClaims) { c.NotBefore = jwt.NewNumericDate(t0.Add(29 * time.Second)) })),
			wantID: 42},
		{name: "alg none", token: unsigned(map[string]any{"alg": "none", "typ": "JWT"},
			map[string]any{"sub": "42", "iss": "https://id.example", "aud": "surge", "exp": t0.Add(time.Hour).Unix()}, ""),
			wantReason: "bad signature or algorithm"},
		{name: "alg none signed by library", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims("42")),
			wantReason: "bad signature or algorithm"},
		{name: "HS384", token: sign(t, jwt.SigningMethodHS384, secret, "", claims("42")), wantReason: "bad signature or algorithm"},
		{name: "RS256 to a secret verifier", token: sign(t, jwt.SigningMethodRS256, rsaKey, "", claims("42")),
			wantReason: "bad signature or algorithm"},
		{name: "HS256 signed with the RSA public key", token: sign(t, jwt.SigningMethodHS256, rsaPub, "", claims("42")),
			wantReason: "bad signature or algorithm"},
		{name: "sub missing", token: hs(claims("")), wantReason: "sub must be a positive decimal user id"},
		{name: "sub not numeric", token: hs(claims("alice")), wantReason: "sub must be a positive decimal user id"},
		{name: "sub zero", token: hs(claims("0")), wantReason: "sub must be a positive decimal user id"},
		{name: "sub negative", token: hs(claims("-42")), wantReason: "sub must be a positive decimal user id"},
		{name: "sub plus sign", token: hs(claims("+42")), wantReason: "sub must be a positive decimal user id"},
		{name: "sub leading zero", token: hs(claims("042")), wantReason: "sub must be a positive decimal user id"},
		{name: "sub overflows int64", token: hs(claims("9223372036854775808")), wantReason: "sub must be a positive decimal user id"},
		{name: "sub max int64", token: hs(claims("9223372036854775807")), wantID: 1<<63 - 1},
		{name: "sub as a number", token: sign(t, jwt.SigningMethodHS256, secret, "",
			jwt.MapClaims{"sub": 42, "iss": "https://id.example", "aud": "surge", "exp": t0.Add(time.Hour).Unix()}),
			wantReason: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.mu.Lock()
			clk.now = t0.Add(tt.skew)
			clk.mu.Unlock()
			checkVerify(t, v, tt.token, tt.wantID, tt.wantReason)
		})
	}
}

// checkVerify verifies token and wants user wantID, or, when wantReason
// is set, a *TokenError with that reason.
func checkVerify(t *testing.T, v *Verifier, token string, wantID int64, wantReason string) {
	t.Helper()
	id, err := v.Verify(context.Background(), token)
	if wantReason == "" {
		if err != nil || id != wantID {
			t.Fatalf("Verify() = %d, %v, want %d", id, err, wantID)
		}
		return
	}
	var te *TokenError
	if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify() = %d, %v, want a *TokenError", id, err)
	}
	if te.Reason != wantReason || id != 0 {
		t.Errorf("Verify() = %d, reason %q (%v), want reason %q", id, te.Reason, err, wantReason)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{name: "secret", cfg: Config{Secret: secret}},
		{name: "jwks", cfg: Config{JWKSURL: "https://id.example/.well-known/jwks.json"}},
		{name: "neither", cfg: Config{}, want: "a secret or a JWKS URL is required"},
		{name: "both", cfg: Config{Secret: secret, JWKSURL: "https://id.example/jwks"}, want: "mutually exclusive"},
		{name: "short secret", cfg: Config{Secret: secret[:31]}, want: "the HS256 secret is 31 bytes, shorter than 32"},
		{name: "relative url", cfg: Config{JWKSURL: "/jwks.json"}, want: "must be an absolute http or https URL"},
		{name: "ftp url", cfg: Config{JWKSURL: "ftp://id.example/jwks"}, want: "must be an absolute http or https URL"},
		{name: "plain http to another host", cfg: Config{JWKSURL: "http://id.example/jwks"}, want: "must be https"},
		{name: "plain http on loopback", cfg: Config{JWKSURL: "http://127.0.0.1:8081/jwks"}},
		{name: "bad url", cfg: Config{JWKSURL: "https://id example/%zz"}, want: "JWKS URL"},
		{name: "negative leeway", cfg: Config{Secret: secret, Leeway: -1}, want: "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want ErrConfig containing %q", err, tt.want)
			}
		})
	}
}

// jwksServer serves the public keys in keys (swappable) and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...map[string]string) { s.mu.Lock(); s.keys = keys; s.mu.Unlock() }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()),
		"e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]string {
	b, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(b[1:33]), "y": b64(b[33:])}
}

func TestVerifyJWKS(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := newJWKSServer(t, rsaJWK("rsa-1", &rsaKey.PublicKey), ecJWK("ec-1", &ecKey.PublicKey))
	clk := &clock{now: t0}
	v, err := New(context.Background(), Config{JWKSURL: srv.URL, Issuer: "https://id.example", Audience: "surge", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	rsaPub := x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)
	tests := []struct {
		name       string
		token      string
		wantID     int64
		wantReason string
	}{
		{name: "RS256", token: sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("7")), wantID: 7},
		{name: "ES256", token: sign(t, jwt.SigningMethodES256, ecKey, "ec-1", claims("8")), wantID: 8},
		{name: "RS256 without kid", token: sign(t, jwt.SigningMethodRS256, rsaKey, "", claims("9")), wantID: 9},
		{name: "RS256 under the EC kid", token: sign(t, jwt.SigningMethodRS256, rsaKey, "ec-1", claims("7")),
			wantReason: "unknown signing key"},
		{name: "HS256 with the RSA public key as secret", token: sign(t, jwt.SigningMethodHS256, rsaPub, "rsa-1", claims("7")),
			wantReason: "bad signature or algorithm"},
		{name: "HS256 with the JWKS n as secret", token: sign(t, jwt.SigningMethodHS256, []byte(b64(rsaKey.N.Bytes())), "rsa-1", claims("7")),
			wantReason: "bad signature or algorithm"},
		{name: "alg none", token: unsigned(map[string]any{"alg": "none", "kid": "rsa-1"}, map[string]any{"sub": "7"}, ""),
			wantReason: "bad signature or algorithm"},
		{name: "RS256 by another key", token: func() string {
			other, _ := rsa.GenerateKey(rand.Reader, 2048)
			return sign(t, jwt.SigningMethodRS256, other, "rsa-1", claims("7"))
		}(), wantReason: "bad signature or algorithm"},
		{name: "ES384", token: sign(t, jwt.SigningMethodES384, ec384, "ec-1", claims("7")), wantReason: "bad signature or algorithm"},
		{name: "unknown kid", token: sign(t, jwt.SigningMethodRS256, rsaKey, "rsa-9", claims("7")), wantReason: "unknown signing key"},
		{name: "no audience", token: func() string {
			c := claims("7")
			c.Audience = nil
			return sign(t, jwt.SigningMethodES256, ecKey, "ec-1", c)
		}(), wantReason: "missing a required claim (exp, or iss and aud when configured)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerify(t, v, tt.token, tt.wantID, tt.wantReason)
		})
	}
}

func TestJWKSRotation(t *testing.T) {
	newKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := newJWKSServer(t, rsaJWK("k1", &rsaKey.PublicKey))
	clk := &clock{now: t0}
	v, err := New(context.Background(), Config{JWKSURL: srv.URL, Clock: clk, MinRefresh: 10 * time.Second, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	verify := func(key *rsa.PrivateKey, kid string) error {
		// A new token every time: a verified one is remembered for a
		// minute, which would hide a key's removal.
		n++
		c := claims("5")
		c.ID = strconv.Itoa(n)
		c.ExpiresAt = jwt.NewNumericDate(clk.Now().Add(time.Hour))
		_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, key, kid, c))
		return err
	}
	if err := verify(rsaKey, "k1"); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches after start = %d, want 1", n)
	}
	// The identity provider rotates in k2; the first k2 token within
	// MinRefresh of the last fetch is refused without a fetch.
	srv.set(rsaJWK("k1", &rsaKey.PublicKey), rsaJWK("k2", &newKey.PublicKey))
	if err := verify(newKey, "k2"); err == nil {
		t.Fatal("k2 accepted before a refresh was allowed")
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches within MinRefresh = %d, want 1", n)
	}
	clk.Add(11 * time.Second)
	if err := verify(newKey, "k2"); err != nil {
		t.Fatalf("k2 after MinRefresh: %v", err)
	}
	// Made-up kids cost at most one fetch per MinRefresh.
	for range 20 {
		if err := verify(newKey, "nope"); err == nil {
			t.Fatal("unknown kid accepted")
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches after 20 unknown kids = %d, want 2", n)
	}
	// k1 is retired: after the next refresh it no longer verifies.
	srv.set(rsaJWK("k2", &newKey.PublicKey))
	clk.Add(2 * time.Hour)
	if err := verify(newKey, "k2"); err != nil { // and starts the background refresh
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for verify(rsaKey, "k1") == nil {
		if time.Now().After(deadline) {
			t.Fatal("retired k1 still verifies after the refresh interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJWKSUnavailableAtStart(t *testing.T) {
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{rsaJWK("k1", &rsaKey.PublicKey)}})
	}))
	t.Cleanup(srv.Close)
	clk := &clock{now: t0}
	v, err := New(context.Background(), Config{JWKSURL: srv.URL, Clock: clk})
	if err != nil {
		t.Fatalf("New with an unreachable JWKS = %v, want a verifier that refuses tokens", err)
	}
	tok := sign(t, jwt.SigningMethodRS256, rsaKey, "k1", claims("5"))
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("token accepted without keys")
	}
	up.Store(true)
	clk.Add(DefaultMinRefresh)
	if id, err := v.Verify(context.Background(), tok); err != nil || id != 5 {
		t.Fatalf("Verify() after the JWKS came up = %d, %v", id, err)
	}
}

func TestParseJWKS(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := rsaJWK("ok", &rsaKey.PublicKey)
	with := func(k map[string]string, f, v string) map[string]string {
		c := map[string]string{}
		for a, b := range k {
			c[a] = b
		}
		c[f] = v
		return c
	}
	tests := []struct {
		name     string
		keys     []map[string]string
		wantKeys int
		wantErr  string
	}{
		{name: "one good", keys: []map[string]string{good}, wantKeys: 1},
		{name: "short RSA skipped", keys: []map[string]string{good, rsaJWK("small", &small.PublicKey)}, wantKeys: 1},
		{name: "only short RSA", keys: []map[string]string{rsaJWK("small", &small.PublicKey)}, wantErr: "fewer than 2048"},
		{name: "enc key", keys: []map[string]string{with(good, "use", "enc")}, wantErr: `use "enc" is not sig`},
		{name: "RS512 key", keys: []map[string]string{with(good, "alg", "RS512")}, wantErr: `alg "RS512" is not accepted`},
		{name: "oct key", keys: []map[string]string{{"kty": "oct", "k": "c2VjcmV0"}}, wantErr: `kty "oct" is not RSA or EC`},
		{name: "EC off curve", keys: []map[string]string{{"kty": "EC", "crv": "P-256", "x": b64(make([]byte, 32)), "y": b64(make([]byte, 32))}},
			wantErr: "key 0"},
		{name: "EC P-384", keys: []map[string]string{{"kty": "EC", "crv": "P-384"}}, wantErr: `curve "P-384" is not P-256`},
		{name: "even exponent", keys: []map[string]string{with(good, "e", b64([]byte{2}))}, wantErr: "exponent"},
		{name: "empty", wantErr: "no usable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"keys": tt.keys})
			got, err := parseJWKS(body)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseJWKS() = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.wantKeys {
				t.Fatalf("parseJWKS() = %d keys, %v, want %d", len(got), err, tt.wantKeys)
			}
		})
	}
}

// FuzzVerify feeds arbitrary Authorization values to an HS256 verifier:
// it must never panic, and anything it accepts must be a well-formed
// HS256 token whose sub is the id returned.
func FuzzVerify(f *testing.F) {
	clk := &clock{now: t0}
	v := newSecretVerifier(f, clk)
	valid := sign(f, jwt.SigningMethodHS256, secret, "", claims("42"))
	for _, s := range []string{valid, "", "a.b.c", valid + "x", strings.Replace(valid, ".", "..", 1),
		unsigned(map[string]any{"alg": "none"}, map[string]any{"sub": "1"}, ""),
		unsigned(map[string]any{"alg": "HS256", "typ": "JWT"}, map[string]any{"sub": "1", "exp": 1 << 40}, "AAAA"),
		sign(f, jwt.SigningMethodRS256, rsaKey, "k", claims("1"))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(context.Background(), token)
		if err != nil {
			if id != 0 || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify(%q) = %d, %v: a rejection must be 0 and wrap ErrInvalidToken", token, id, err)
			}
			return
		}
		tok, _, perr := jwt.NewParser().ParseUnverified(token, &jwt.RegisteredClaims{})
		if perr != nil || tok.Method.Alg() != "HS256" {
			t.Fatalf("Verify(%q) accepted a token that is not HS256: %v", token, perr)
		}
		if sub, _ := tok.Claims.GetSubject(); sub != "42" || id != 42 {
			t.Fatalf("Verify(%q) = %d for sub %q", token, id, sub)
		}
	})
}

func BenchmarkVerifyHS256(b *testing.B) {
	v := newSecretVerifier(b, &clock{now: t0})
	tok := sign(b, jwt.SigningMethodHS256, secret, "", claims("42"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
	}
}
