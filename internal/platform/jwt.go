package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/surgefn/surge/internal/jwtauth"
)

// JWTOptions configure the verification of end-user tokens on routes with
// spec.http.auth: user (README "End-user auth on routes"). With neither
// SecretFile nor JWKSURL the gateway has no verifier, and such routes
// answer 503.
type JWTOptions struct {
	// SecretFile holds the HS256 secret (--jwt-secret-file): at least 32
	// bytes; a trailing newline is not part of it.
	SecretFile string
	// JWKSURL publishes the RS256/ES256 public keys (--jwks-url).
	JWKSURL string
	// Issuer and Audience, when set, must match the iss and aud claims
	// (--jwt-issuer, --jwt-audience).
	Issuer   string
	Audience string
}

// enabled reports whether a verifier is configured.
func (o *JWTOptions) enabled() bool { return o.SecretFile != "" || o.JWKSURL != "" }

// validate checks the JWT flags and reads the secret, naming the flag of
// each problem.
func (o *JWTOptions) validate() (secret []byte, errs []error) {
	switch {
	case o.SecretFile != "" && o.JWKSURL != "":
		return nil, []error{errors.New("--jwt-secret-file and --jwks-url are mutually exclusive: choose HS256 or RS256/ES256")}
	case o.SecretFile != "":
		b, err := os.ReadFile(o.SecretFile)
		if err != nil {
			return nil, []error{fmt.Errorf("--jwt-secret-file: %w", err)}
		}
		secret = bytes.TrimRight(b, "\r\n")
		if len(secret) < jwtauth.MinSecretLen {
			errs = append(errs, fmt.Errorf("--jwt-secret-file %s: the secret is %d bytes, HS256 needs at least %d (e.g. openssl rand -hex 32)",
				o.SecretFile, len(secret), jwtauth.MinSecretLen))
		}
	case o.JWKSURL != "":
		if err := jwtauth.CheckJWKSURL(o.JWKSURL); err != nil {
			errs = append(errs, fmt.Errorf("--jwks-url: %w", err))
		}
	case o.Issuer != "" || o.Audience != "":
		errs = append(errs, errors.New("--jwt-issuer and --jwt-audience need --jwt-secret-file or --jwks-url"))
	}
	return secret, errs
}

// jwtVerifier builds the gateway's verifier, nil when none is configured.
func (p *Platform) jwtVerifier(ctx context.Context) (*jwtauth.Verifier, error) {
	o := p.opts.JWT
	if !o.enabled() {
		return nil, nil
	}
	v, err := jwtauth.New(ctx, jwtauth.Config{Secret: p.opts.jwtSecret, JWKSURL: o.JWKSURL, Issuer: o.Issuer,
		Audience: o.Audience, Clock: p.opts.Clock, Logger: p.log.With("component", "jwt")})
	if err != nil {
		return nil, fmt.Errorf("user auth: %w", err)
	}
	return v, nil
}
