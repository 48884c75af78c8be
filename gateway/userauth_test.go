package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/jwtauth"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/wire"
)

// headerEcho answers every request with the headers it carried, as JSON,
// and remembers the last message.
type headerEcho struct{ last *nats.Msg }

func (h *headerEcho) RequestMsgWithContext(_ context.Context, m *nats.Msg) (*nats.Msg, error) {
	h.last = m
	b, _ := json.Marshal(m.Header)
	return &nats.Msg{Data: b, Header: nats.Header{}}, nil
}

// publishCapture acks every publish and remembers the last message.
type publishCapture struct{ last *nats.Msg }

func (p *publishCapture) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	p.last = m
	return &jetstream.PubAck{Duplicate: true}, nil
}

const testAdminToken = "admin-token-0123456789"

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// authServer is an Echo with the invoke handlers over a fake NATS, routes
// for each auth mode, and a verifier (nil: none configured).
func authServer(t *testing.T, users UserVerifier) (*echo.Echo, *headerEcho, *publishCapture) {
	t.Helper()
	route := func(name, method, path, auth string, async bool) manifests.Function {
		f := fn(name, method, path, async, "")
		f.Spec.HTTP.Auth = auth
		return f
	}
	table, errs := Build([]manifests.Function{
		route("open", "POST", "/v1/open", manifests.AuthNone, false),
		route("mine", "GET", "/v1/users/{user_id}/orders", manifests.AuthUser, false),
		route("mine-async", "POST", "/v1/mine", manifests.AuthUser, true),
		route("ops", "POST", "/v1/ops", manifests.AuthAdmin, false),
		fn("internal", "", "", false, "INTERNAL"),
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	nc, js := &headerEcho{}, &publishCapture{}
	d := invokeDeps{nc: nc, js: js, calls: nopCalls{}, table: func() *Table { return table }, bodyLimit: 1 << 20,
		auth: newRouteAuth(users, testAdminToken)}
	e := echo.New()
	e.HTTPErrorHandler = newErrorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.POST("/function/:name", newByNameHandler(d, false))
	e.POST("/async-function/:name", newByNameHandler(d, true))
	e.Any("/*", newRouteHandler(d))
	return e, nc, js
}

type nopCalls struct{}

func (nopCalls) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}

func (nopCalls) Create(context.Context, string, []byte, ...jetstream.KVCreateOpt) (uint64, error) {
	return 1, nil
}

func userToken(t *testing.T, sub string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(exp)}).
		SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRouteAuth(t *testing.T) {
	v, err := jwtauth.New(context.Background(), jwtauth.Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	e, nc, js := authServer(t, v)
	good := "Bearer " + userToken(t, "42", time.Now().Add(time.Hour))
	expired := "Bearer " + userToken(t, "42", time.Now().Add(-time.Hour))
	tests := []struct {
		name       string
		method     string
		path       string
		authz      string
		forged     string // a client-sent Surge-User-Id
		wantStatus int
		wantUser   string // Surge-User-Id the function got ("" none)
		wantChall  string // WWW-Authenticate, when 401
	}{
		{name: "open route", method: "POST", path: "/v1/open", wantStatus: 200},
		{name: "open route drops a forged user", method: "POST", path: "/v1/open", forged: "7", wantStatus: 200},
		{name: "user route without token", method: "GET", path: "/v1/users/42/orders", wantStatus: 401,
			wantChall: `Bearer realm="surge"`},
		{name: "user route with basic auth", method: "GET", path: "/v1/users/42/orders", authz: "Basic YTpi", wantStatus: 401,
			wantChall: `Bearer realm="surge"`},
		{name: "user route with empty bearer", method: "GET", path: "/v1/users/42/orders", authz: "Bearer ", wantStatus: 401,
			wantChall: `Bearer realm="surge"`},
		{name: "user route with garbage", method: "GET", path: "/v1/users/42/orders", authz: "Bearer x.y.z", wantStatus: 401,
			wantChall: `Bearer realm="surge", error="invalid_token"`},
		{name: "user route expired", method: "GET", path: "/v1/users/42/orders", authz: expired, wantStatus: 401,
			wantChall: `Bearer realm="surge", error="invalid_token"`},
		{name: "user route with the admin token", method: "GET", path: "/v1/users/42/orders", authz: "Bearer " + testAdminToken,
			wantStatus: 401, wantChall: `Bearer realm="surge", error="invalid_token"`},
		{name: "user route", method: "GET", path: "/v1/users/42/orders", authz: good, wantStatus: 200, wantUser: "42"},
		{name: "user route scheme is case-insensitive", method: "GET", path: "/v1/users/42/orders",
			authz: "bearer " + strings.TrimPrefix(good, "Bearer "), wantStatus: 200, wantUser: "42"},
		{name: "forged user replaced by the token's", method: "GET", path: "/v1/users/7/orders", authz: good, forged: "7",
			wantStatus: 200, wantUser: "42"},
		{name: "async user route", method: "POST", path: "/v1/mine", authz: good, forged: "7", wantStatus: 202, wantUser: "42"},
		{name: "async user route without token", method: "POST", path: "/v1/mine", wantStatus: 401, wantChall: `Bearer realm="surge"`},
		{name: "by name keeps the route's auth", method: "POST", path: "/function/mine", forged: "7", wantStatus: 401,
			wantChall: `Bearer realm="surge"`},
		{name: "by name with a token", method: "POST", path: "/function/mine", authz: good, forged: "7", wantStatus: 200, wantUser: "42"},
		{name: "async by name keeps the route's auth", method: "POST", path: "/async-function/mine-async", wantStatus: 401,
			wantChall: `Bearer realm="surge"`},
		{name: "open function by name drops a forged user", method: "POST", path: "/function/open", forged: "7", wantStatus: 200},
		{name: "admin route without token", method: "POST", path: "/v1/ops", wantStatus: 401, wantChall: `Bearer realm="surge"`},
		{name: "admin route with a user token", method: "POST", path: "/v1/ops", authz: good, wantStatus: 401,
			wantChall: `Bearer realm="surge"`},
		{name: "admin route", method: "POST", path: "/v1/ops", authz: "Bearer " + testAdminToken, forged: "7", wantStatus: 200},
		{name: "admin function by name", method: "POST", path: "/function/ops", wantStatus: 401, wantChall: `Bearer realm="surge"`},
		{name: "function without a route by name", method: "POST", path: "/async-function/internal", authz: good, wantStatus: 401,
			wantChall: `Bearer realm="surge"`},
		{name: "function without a route by name, admin", method: "POST", path: "/async-function/internal",
			authz: "Bearer " + testAdminToken, wantStatus: 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc.last, js.last = nil, nil
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader("{}"))
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			if tt.forged != "" {
				r.Header.Set(wire.HeaderUserID, tt.forged)
				r.Header.Set("Surge-Function", "other")
				r.Header.Set("Surge-Call-Id", "forged")
			}
			w := httptest.NewRecorder()
			e.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, w.Code, w.Body, tt.wantStatus)
			}
			if tt.wantStatus == 401 {
				if got := w.Header().Get("WWW-Authenticate"); got != tt.wantChall {
					t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChall)
				}
				var body errorBody
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "unauthorized" {
					t.Errorf("401 body = %s, want the unauthorized envelope", w.Body)
				}
				if nc.last != nil || js.last != nil {
					t.Error("a refused call reached the function")
				}
				return
			}
			m := nc.last
			if tt.wantStatus == 202 {
				m = js.last
			}
			if m == nil {
				t.Fatal("the call did not reach the function")
			}
			if got := m.Header.Get(wire.HeaderUserID); got != tt.wantUser {
				t.Errorf("Surge-User-Id = %q, want %q", got, tt.wantUser)
			}
			if vs := m.Header.Values(wire.HeaderUserID); len(vs) > 1 {
				t.Errorf("Surge-User-Id has %d values", len(vs))
			}
			if got := m.Header.Get("Surge-Call-Id"); got == "forged" {
				t.Error("a client-sent Surge-Call-Id reached the function")
			}
			if got := m.Header.Get("Surge-Function"); got == "other" {
				t.Error("a client-sent Surge-Function reached the function")
			}
			if m.Header.Get("Authorization") != "" {
				t.Error("Authorization reached the function")
			}
		})
	}
}

func TestUserRouteWithoutVerifier(t *testing.T) {
	e, nc, _ := authServer(t, nil)
	for _, path := range []string{"/v1/users/42/orders", "/function/mine"} {
		method := "GET"
		if strings.HasPrefix(path, "/function/") {
			method = "POST"
		}
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Authorization", "Bearer "+userToken(t, "42", time.Now().Add(time.Hour)))
		r.Header.Set(wire.HeaderUserID, "42")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"auth_unavailable"`) {
			t.Errorf("%s %s without a verifier = %d %s, want 503 auth_unavailable", method, path, w.Code, w.Body)
		}
		if nc.last != nil {
			t.Errorf("%s reached the function without user auth", path)
		}
	}
	// Routes without auth: user still serve.
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest("POST", "/v1/open", nil))
	if w.Code != 200 {
		t.Errorf("open route without a verifier = %d", w.Code)
	}
}

// FuzzBuildMsg sends arbitrary client headers through buildMsg: whatever
// they are, the only Surge-* headers a function receives are the ones the
// gateway sets (method, path, query, the route's parameters, the user it
// authenticated), no Nats-* header passes, and Surge-User-Id is exactly
// the authenticated user or absent.
func FuzzBuildMsg(f *testing.F) {
	for _, s := range []struct {
		key, val string
		user     int64
	}{
		{"Surge-User-Id", "7", 0},
		{"surge-user-id", "7", 42},
		{"SURGE-USER-ID", "1", 0},
		{"Surge-Param-user_id", "7", 42},
		{"Surge-Status", "200", 0},
		{"Surge-Call-Id", "x", 0},
		{"Surge-Function", "admin", 0},
		{"Surge-Method", "DELETE", 0},
		{"Nats-Msg-Id", "dup", 0},
		{"Nats-Service-Error-Code", "500", 0},
		{"X-Request-Id", "r", 0},
		{"Idempotency-Key", "k", 7},
		{"Content-Type", "text/plain", 0},
	} {
		f.Add(s.key, s.val, s.user)
	}
	f.Fuzz(func(t *testing.T, key, val string, user int64) {
		r := httptest.NewRequest("POST", "/v1/users/5/orders?page=1", nil)
		r.Header[key] = []string{val}
		r.Header.Add(http.CanonicalHeaderKey(key), val)
		var p Params
		p.add("user_id", "5")
		m := buildMsg("fn.x", r, "rid", "", &p, user, nil, 0)
		allowed := map[string]bool{wire.HeaderMethod: true, wire.HeaderPath: true, wire.HeaderQuery: true,
			wire.HeaderParamPrefix + "user_id": true, wire.HeaderUserID: user > 0}
		for k, vs := range m.Header {
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "surge-") && !allowed[k] {
				t.Fatalf("client header %q=%q let %q=%q through", key, val, k, vs)
			}
			if strings.HasPrefix(lk, "nats-") {
				t.Fatalf("client header %q=%q let %q through", key, val, k)
			}
		}
		if got := m.Header[wire.HeaderParamPrefix+"user_id"]; len(got) != 1 || got[0] != "5" {
			t.Fatalf("Surge-Param-user_id = %q, want [5]", got)
		}
		got := m.Header[wire.HeaderUserID]
		switch {
		case user > 0 && (len(got) != 1 || got[0] != strconv.FormatInt(user, 10)):
			t.Fatalf("Surge-User-Id = %q, want [%d]", got, user)
		case user <= 0 && got != nil:
			t.Fatalf("Surge-User-Id = %q without an authenticated user", got)
		}
	})
}
