package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/manifests"
)

// JWTSecret is the HS256 secret of the platforms WithUserAuth configures.
const JWTSecret = "test-jwt-secret-0123456789abcdef"

// Issuer and audience the platforms WithUserAuth configure require.
const (
	JWTIssuer   = "https://id.surge.test"
	JWTAudience = "surge-test"
)

// WithUserAuth sets o up to verify end-user tokens signed by UserToken:
// the secret in a file under t.TempDir(), issuer and audience required.
func WithUserAuth(t testing.TB, o *platform.Options) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "jwt.secret")
	if err := os.WriteFile(f, []byte(JWTSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.JWT = platform.JWTOptions{SecretFile: f, Issuer: JWTIssuer, Audience: JWTAudience}
}

// UserToken is a valid end-user token for user, good for an hour; an
// "Authorization: Bearer ..." header for Do.
func UserToken(t testing.TB, user int64) string {
	t.Helper()
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: strconv.FormatInt(user, 10), Issuer: JWTIssuer, Audience: jwt.ClaimStrings{JWTAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}).SignedString([]byte(JWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return "Authorization: Bearer " + s
}

// StartFunctions runs a platform with the repository manifests files
// deployed; with userAuth, every route of them is auth: user, verifying
// the tokens of UserToken.
func StartFunctions(t testing.TB, userAuth bool, files ...string) *Env {
	t.Helper()
	dir := ManifestsDir(t, func(fn *manifests.Function) {
		if userAuth && fn.Spec.HTTP != nil {
			fn.Spec.HTTP.Auth = manifests.AuthUser
		}
	}, files...)
	return Start(t, func(o *platform.Options) {
		o.Manifests = dir
		if userAuth {
			WithUserAuth(t, o)
		}
	})
}
