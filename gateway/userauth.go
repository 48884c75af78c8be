package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/surgefn/surge/internal/jwtauth"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
)

// UserVerifier checks an end user's bearer token and returns the user id
// it names (*jwtauth.Verifier).
type UserVerifier interface {
	Verify(ctx context.Context, token string) (int64, error)
}

// errNoVerifier is the logged cause of a 503 on an auth: user route of a
// gateway started without --jwt-secret-file or --jwks-url.
var errNoVerifier = errors.New("route has spec.http.auth: user but this gateway has no JWT verifier (--jwt-secret-file or --jwks-url)")

// routeAuth is the access check of spec.http.auth, shared by the routes
// and by /function/{name} and /async-function/{name}, so calling a
// function by name never skips its route's check.
type routeAuth struct {
	users UserVerifier // nil: auth: user routes answer 503
	admin []byte       // "Bearer <admin token>"
}

func newRouteAuth(users UserVerifier, adminToken string) routeAuth {
	return routeAuth{users: users, admin: []byte("Bearer " + adminToken)}
}

// check enforces mode on the request and returns the authenticated user
// (0 when the mode names none). An auth: user route without a verifier is
// refused, never served unauthenticated.
func (a routeAuth) check(c echo.Context, mode string) (int64, error) {
	switch mode {
	case "", manifests.AuthNone:
		return 0, nil
	case manifests.AuthAdmin:
		return 0, a.checkAdmin(c)
	case manifests.AuthUser:
		if a.users == nil {
			return 0, &runtime.Error{Status: http.StatusServiceUnavailable, Code: "auth_unavailable",
				Msg: "this route requires a signed-in user, and user authentication is not configured on this gateway", Err: errNoVerifier}
		}
		token, ok := bearer(c.Request().Header.Get("Authorization"))
		if !ok {
			return 0, unauthorized(c, "", "a user token is required (Authorization: Bearer <JWT>)")
		}
		id, err := a.users.Verify(c.Request().Context(), token)
		if err != nil {
			var te *jwtauth.TokenError
			reason := "rejected"
			if errors.As(err, &te) {
				reason = te.Reason
			}
			return 0, unauthorized(c, "invalid_token", "invalid user token: "+reason)
		}
		return id, nil
	}
	// Validate admits no other mode; refuse rather than guess.
	return 0, runtime.Internal(errors.New("unknown spec.http.auth " + mode))
}

// checkAdmin requires "Authorization: Bearer <admin token>", compared in
// constant time.
func (a routeAuth) checkAdmin(c echo.Context) error {
	got := []byte(c.Request().Header.Get("Authorization"))
	if subtle.ConstantTimeCompare(got, a.admin) != 1 {
		return unauthorized(c, "", "a valid admin token is required (Authorization: Bearer <token>)")
	}
	return nil
}

// newAuth is the admin API's middleware: the admin token, else 401.
func newAuth(token string) echo.MiddlewareFunc {
	a := newRouteAuth(nil, token)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := a.checkAdmin(c); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// unauthorized is a 401 with its WWW-Authenticate challenge (RFC 6750:
// error="invalid_token" when a token came and was refused).
func unauthorized(c echo.Context, bearerErr, msg string) error {
	challenge := `Bearer realm="surge"`
	if bearerErr != "" {
		challenge += `, error="` + bearerErr + `"`
	}
	c.Response().Header().Set("WWW-Authenticate", challenge)
	return runtime.Errorf(http.StatusUnauthorized, "unauthorized", "%s", msg)
}

// bearer returns the token of an "Authorization: Bearer <token>" value;
// the scheme is case-insensitive (RFC 7235).
func bearer(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(scheme):])
	return tok, tok != ""
}
