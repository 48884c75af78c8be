package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/surgefn/surge/runtime"
)

// The key set is a small fetcher over crypto/*: JWKS (RFC 7517) with RSA
// keys of at least 2048 bits for RS256 and P-256 EC keys for ES256, the
// only algorithms the verifier accepts. Keys of other types, of another
// use than "sig", or whose alg is not one of those are skipped.

// MaxJWKSBytes bounds a fetched key set.
const MaxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// errUnknownKey means no key of the set matches a token's kid and alg.
var errUnknownKey = errors.New("no matching key in the JWKS")

// keySet holds the keys of one JWKS URL and refreshes them: in the
// background once they are older than refresh, and at once (at most every
// minRefresh) when a token names a kid the set lacks, which is how a
// rotated-in key is picked up.
type keySet struct {
	url        string
	client     *http.Client
	clock      runtime.Clock
	refresh    time.Duration
	minRefresh time.Duration
	log        *slog.Logger

	keys       atomic.Pointer[keyMap]
	background atomic.Bool

	mu          sync.Mutex // one fetch at a time
	lastAttempt time.Time
}

// keyMap is one fetched set: keys by kid ("" for keys without one).
type keyMap struct {
	byKID     map[string][]jwk
	fetchedAt time.Time
}

// jwk is one usable public key.
type jwk struct {
	alg string // the algorithm the key verifies: RS256 or ES256
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

func newKeySet(cfg Config) *keySet {
	ks := &keySet{url: cfg.JWKSURL, client: cfg.Client, clock: cfg.Clock, refresh: cfg.Refresh,
		minRefresh: cfg.MinRefresh, log: cfg.Logger}
	if ks.client == nil {
		// No redirects: the key set comes from the configured URL only.
		ks.client = &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if ks.refresh == 0 {
		ks.refresh = DefaultRefresh
	}
	if ks.minRefresh == 0 {
		ks.minRefresh = DefaultMinRefresh
	}
	if ks.log == nil {
		ks.log = slog.Default()
	}
	ks.keys.Store(&keyMap{})
	return ks
}

// lookup returns the key (or, for a token without kid, the keys) that may
// verify a token signed with alg.
func (ks *keySet) lookup(ctx context.Context, kid, alg string) (any, error) {
	m := ks.keys.Load()
	if now := ks.clock.Now(); !m.fetchedAt.IsZero() && now.Sub(m.fetchedAt) > ks.refresh && ks.background.CompareAndSwap(false, true) {
		go func() {
			defer ks.background.Store(false)
			if err := ks.fetch(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, errTooSoon) {
				ks.log.Warn("JWKS refresh failed; keeping the keys already loaded", "url", ks.url, "err", err)
			}
		}()
	}
	if k, ok := m.find(kid, alg); ok {
		return k, nil
	}
	// An unknown kid: perhaps a key rotated in since the last fetch.
	if !ks.refreshUnknown(ctx) {
		return nil, fmt.Errorf("%w: kid %q, alg %s", errUnknownKey, kid, alg)
	}
	if k, ok := ks.keys.Load().find(kid, alg); ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %q, alg %s", errUnknownKey, kid, alg)
}

// find picks the key for kid and alg; without kid, every key for alg.
func (m *keyMap) find(kid, alg string) (any, bool) {
	if kid != "" {
		for _, k := range m.byKID[kid] {
			if k.alg == alg {
				return k.key, true
			}
		}
		return nil, false
	}
	var set jwt.VerificationKeySet
	for _, ks := range m.byKID {
		for _, k := range ks {
			if k.alg == alg {
				set.Keys = append(set.Keys, k.key)
			}
		}
	}
	return set, len(set.Keys) > 0
}

// refreshUnknown fetches the set again unless a fetch was tried less than
// minRefresh ago; it reports whether the set may have changed.
func (ks *keySet) refreshUnknown(ctx context.Context) bool {
	err := ks.fetch(ctx)
	if err != nil && !errors.Is(err, errTooSoon) {
		ks.log.Warn("JWKS fetch for an unknown kid failed", "url", ks.url, "err", err)
	}
	return err == nil
}

// errTooSoon means a fetch was skipped: the last one was tried less than
// minRefresh ago.
var errTooSoon = errors.New("JWKS fetched less than the minimum refresh interval ago")

// fetch loads the set, at most once per minRefresh whatever asks for it
// (startup, background refresh, unknown kids), so tokens with made-up kids
// cannot make the gateway hammer the identity provider. Concurrent callers
// wait for one fetch; the ones that waited get errTooSoon.
func (ks *keySet) fetch(ctx context.Context) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	start := ks.clock.Now()
	if !ks.lastAttempt.IsZero() && start.Sub(ks.lastAttempt) < ks.minRefresh {
		return errTooSoon
	}
	ks.lastAttempt = start
	keys, err := ks.get(ctx)
	if err != nil {
		return err
	}
	ks.keys.Store(&keyMap{byKID: keys, fetchedAt: start})
	return nil
}

func (ks *keySet) get(ctx context.Context) (map[string][]jwk, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", ks.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if len(body) > MaxJWKSBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", MaxJWKSBytes)
	}
	return parseJWKS(body)
}

// rawJWK is a JWK as published; only the fields of RSA and EC public keys.
type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS decodes a key set, keeping the keys the verifier can use. A
// set with none is an error, so a broken publish never replaces good keys.
func parseJWKS(body []byte) (map[string][]jwk, error) {
	var doc struct {
		Keys []rawJWK `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	out := map[string][]jwk{}
	var skipped []error
	for i, r := range doc.Keys {
		k, err := r.parse()
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d (kid %q): %w", i, r.Kid, err))
			continue
		}
		out[r.Kid] = append(out[r.Kid], k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("JWKS has no usable RS256 or ES256 key: %w", errors.Join(skipped...))
	}
	return out, nil
}

func (r *rawJWK) parse() (jwk, error) {
	if r.Use != "" && r.Use != "sig" {
		return jwk{}, fmt.Errorf("use %q is not sig", r.Use)
	}
	switch r.Kty {
	case "RSA":
		if r.Alg != "" && r.Alg != "RS256" {
			return jwk{}, fmt.Errorf("alg %q is not accepted", r.Alg)
		}
		n, err := b64int(r.N)
		if err != nil {
			return jwk{}, fmt.Errorf("n: %w", err)
		}
		e, err := b64int(r.E)
		if err != nil {
			return jwk{}, fmt.Errorf("e: %w", err)
		}
		if n.BitLen() < minRSABits {
			return jwk{}, fmt.Errorf("RSA key of %d bits, fewer than %d", n.BitLen(), minRSABits)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return jwk{}, errors.New("RSA exponent out of range")
		}
		return jwk{alg: "RS256", key: &rsa.PublicKey{N: n, E: int(e.Int64())}}, nil
	case "EC":
		if r.Alg != "" && r.Alg != "ES256" {
			return jwk{}, fmt.Errorf("alg %q is not accepted", r.Alg)
		}
		if r.Crv != "P-256" {
			return jwk{}, fmt.Errorf("curve %q is not P-256", r.Crv)
		}
		x, errX := base64.RawURLEncoding.DecodeString(r.X)
		y, errY := base64.RawURLEncoding.DecodeString(r.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return jwk{}, errors.New("x and y must be 32 bytes of base64url each")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return jwk{}, err
		}
		return jwk{alg: "ES256", key: pub}, nil
	}
	return jwk{}, fmt.Errorf("kty %q is not RSA or EC", r.Kty)
}

// b64int decodes an unpadded base64url big-endian integer.
func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return new(big.Int).SetBytes(b), nil
}
