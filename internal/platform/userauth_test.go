package platform_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	_ "github.com/surgefn/surge/functions/events"
	_ "github.com/surgefn/surge/functions/orders"
	_ "github.com/surgefn/surge/functions/signin"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

func init() {
	runtime.Register(runtime.Module{ID: "test.headers", New: func() any { return runtime.HandlerFunc(echoHeaders) }})
}

// echoHeaders answers with the headers the function received.
func echoHeaders(_ context.Context, req *runtime.Request) error {
	return req.RespondJSON(http.StatusOK, req.Header)
}

// headersManifest deploys test.headers on POST path with spec.http.auth.
func headersManifest(name, path, auth string) string {
	return fmt.Sprintf("{apiVersion: surge/v1, kind: Function, metadata: {name: %s}, spec: {handler: test.headers, "+
		"trigger: {subject: fn.%s}, http: {method: POST, path: %s, auth: %s}}}\n", name, name, path, auth)
}

// userRoutes are the built-in functions that take a user_id, turned to
// auth: user the way README "End-user auth on routes" shows.
var userRoutes = map[string]bool{"order-accept": true, "order-get": true, "order-list": true, "signin": true, "events-ingest": true}

func startWithUserAuth(t *testing.T) *testenv.Env {
	t.Helper()
	dir := testenv.ManifestsDir(t, func(fn *manifests.Function) {
		if userRoutes[fn.Metadata.Name] {
			fn.Spec.HTTP.Auth = manifests.AuthUser
		}
	}, "orders.yaml", "signin.yaml", "events.yaml")
	return testenv.Start(t, func(o *platform.Options) {
		o.Manifests = dir
		testenv.WithUserAuth(t, o)
	})
}

// TestUserAuthObjectLevel is OWASP API1 end to end: with auth: user on the
// order, sign-in and event routes, user A cannot read or write user B's
// data, and user B's order reads as missing.
func TestUserAuthObjectLevel(t *testing.T) {
	env := startWithUserAuth(t)
	const a, b = 501, 502
	asA, asB := testenv.UserToken(t, a), testenv.UserToken(t, b)
	order := func(user int64) []byte {
		return fmt.Appendf(nil, `{"user_id":%d,"items":[{"sku":"A1","qty":1,"price_cents":100}],"currency":"CNY"}`, user)
	}
	r := env.Do(t, "POST", "/v1/orders", order(a), asA)
	if r.Status != http.StatusAccepted {
		t.Fatalf("A orders for A = %d %s", r.Status, r.Body)
	}
	var acc struct {
		OrderID string `json:"order_id"`
	}
	r.JSON(t, &acc)
	testenv.Eventually(t, 3*time.Second, "A reads A's order", func() bool {
		return env.Do(t, "GET", "/v1/orders/"+acc.OrderID, nil, asA).Status == http.StatusOK
	})
	event := func(user int64) string {
		return fmt.Sprintf(`{"user_id":%d,"type":"view","item_id":"I1","ts":"2026-03-01T12:00:00Z"}`, user)
	}

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		auth       string // header, "" for none
		wantStatus int
		wantCode   string
	}{
		{name: "order without token", method: "POST", path: "/v1/orders", body: string(order(a)), wantStatus: 401, wantCode: "unauthorized"},
		{name: "A orders for B", method: "POST", path: "/v1/orders", body: string(order(b)), auth: asA, wantStatus: 403, wantCode: "forbidden"},
		{name: "A orders for B with an idempotency key", method: "POST", path: "/v1/orders", body: string(order(b)),
			auth: asA + "\nIdempotency-Key: k-b", wantStatus: 403, wantCode: "forbidden"},
		{name: "B reads A's order", method: "GET", path: "/v1/orders/" + acc.OrderID, auth: asB, wantStatus: 404, wantCode: "order_not_found"},
		{name: "B reads a missing order", method: "GET", path: "/v1/orders/01NOSUCHORDER0000000000000", auth: asB, wantStatus: 404,
			wantCode: "order_not_found"},
		{name: "A's order without token", method: "GET", path: "/v1/orders/" + acc.OrderID, wantStatus: 401, wantCode: "unauthorized"},
		{name: "B lists A's orders", method: "GET", path: fmt.Sprintf("/v1/users/%d/orders", a), auth: asB, wantStatus: 403, wantCode: "forbidden"},
		{name: "A lists A's orders", method: "GET", path: fmt.Sprintf("/v1/users/%d/orders", a), auth: asA, wantStatus: 200},
		{name: "B lists A's orders by name", method: "POST", path: "/function/order-list", body: fmt.Sprintf(`{"user_id":%d}`, a),
			auth: asB, wantStatus: 403, wantCode: "forbidden"},
		{name: "A's orders by name without token", method: "POST", path: "/function/order-list", body: fmt.Sprintf(`{"user_id":%d}`, a),
			wantStatus: 401, wantCode: "unauthorized"},
		{name: "A signs in as B", method: "POST", path: "/v1/signin", body: fmt.Sprintf(`{"user_id":%d}`, b), auth: asA, wantStatus: 403,
			wantCode: "forbidden"},
		{name: "A signs in", method: "POST", path: "/v1/signin", body: fmt.Sprintf(`{"user_id":%d}`, a), auth: asA, wantStatus: 200},
		{name: "A tracks an event of B", method: "POST", path: "/v1/events", body: "[" + event(a) + "," + event(b) + "]", auth: asA,
			wantStatus: 403, wantCode: "forbidden"},
		{name: "A tracks A's events", method: "POST", path: "/v1/events", body: "[" + event(a) + "," + event(a) + "]", auth: asA,
			wantStatus: 202},
		{name: "events without token", method: "POST", path: "/v1/events", body: event(a), wantStatus: 401, wantCode: "unauthorized"},
		{name: "a forged Surge-User-Id is no token", method: "GET", path: fmt.Sprintf("/v1/users/%d/orders", a),
			auth: "Surge-User-Id: 501", wantStatus: 401, wantCode: "unauthorized"},
		{name: "the admin token is no user token", method: "GET", path: fmt.Sprintf("/v1/users/%d/orders", a),
			auth: "Authorization: Bearer " + testenv.Token, wantStatus: 401, wantCode: "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdrs []string
			if tt.auth != "" {
				hdrs = strings.Split(tt.auth, "\n")
			}
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := env.Do(t, tt.method, tt.path, body, hdrs...)
			if r.Status != tt.wantStatus || r.ErrorCode() != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d %s", tt.method, tt.path, r.Status, r.Body, tt.wantStatus, tt.wantCode)
			}
			if r.Status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}

	// Idempotency-Keys are per user: B's request with the key A used is
	// B's own order, not a 422 telling B the key was taken.
	if r := env.Do(t, "POST", "/v1/orders", order(a), asA, "Idempotency-Key: shared-k"); r.Status != http.StatusAccepted {
		t.Fatalf("A with a key = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/v1/orders", order(b), asB, "Idempotency-Key: shared-k"); r.Status != http.StatusAccepted {
		t.Errorf("B with A's key = %d %s, want 202", r.Status, r.Body)
	}

	// Over NATS (no gateway, no Surge-User-Id) no end-user check applies:
	// who may send a request there is up to the NATS credentials.
	msg, err := env.NC.Request("fn.orders.list", fmt.Appendf(nil, `{"user_id":%d}`, a), 2*time.Second)
	if err != nil || runtime.ErrorFromHeaders(msg.Header) != nil {
		t.Fatalf("fn.orders.list over NATS = %v, %v", err, runtime.ErrorFromHeaders(msg.Header))
	}
}

// TestForgedUserHeaderNeverReachesFunctions: a client's Surge-* headers
// are dropped on every route and call by name; an auth: user route
// passes the token's user instead.
func TestForgedUserHeaderNeverReachesFunctions(t *testing.T) {
	env := testenv.Start(t, func(o *platform.Options) { testenv.WithUserAuth(t, o) })
	env.Deploy(t, headersManifest("whoami", "/v1/whoami", "user"))
	env.Deploy(t, headersManifest("headers", "/v1/headers", "none"))
	env.Deploy(t, headersManifest("ops", "/v1/ops", "admin"))
	forged := []string{"Surge-User-Id: 1", "Surge-Function: other", "Surge-Call-Id: c1", "Surge-Status: 201", "Nats-Msg-Id: m1"}
	tests := []struct {
		name     string
		path     string
		auth     string
		wantUser string
	}{
		{name: "user route", path: "/v1/whoami", auth: testenv.UserToken(t, 77), wantUser: "77"},
		{name: "user function by name", path: "/function/whoami", auth: testenv.UserToken(t, 78), wantUser: "78"},
		{name: "open route", path: "/v1/headers"},
		{name: "open function by name", path: "/function/headers"},
		{name: "admin route", path: "/v1/ops", auth: "Authorization: Bearer " + testenv.Token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdrs := forged
			if tt.auth != "" {
				hdrs = append(append([]string(nil), forged...), tt.auth)
			}
			r := env.Do(t, "POST", tt.path, []byte(`{}`), hdrs...)
			if r.Status != http.StatusOK {
				t.Fatalf("POST %s = %d %s", tt.path, r.Status, r.Body)
			}
			var got map[string][]string
			r.JSON(t, &got)
			if u := got[wire.HeaderUserID]; tt.wantUser == "" && u != nil || tt.wantUser != "" && (len(u) != 1 || u[0] != tt.wantUser) {
				t.Errorf("Surge-User-Id = %q, want %q", u, tt.wantUser)
			}
			for k := range got {
				if k == wire.HeaderMsgID || k == wire.HeaderFunction || k == wire.HeaderCallID || k == wire.HeaderStatus || k == "Authorization" {
					t.Errorf("client header %s reached the function: %v", k, got)
				}
			}
		})
	}
	// The admin route wants the admin token, not a user's.
	if r := env.Do(t, "POST", "/v1/ops", nil, testenv.UserToken(t, 77)); r.Status != 401 {
		t.Errorf("admin route with a user token = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/function/ops", nil); r.Status != 401 {
		t.Errorf("admin function by name without token = %d %s", r.Status, r.Body)
	}
	// The async by-name path keeps the route's auth too.
	if r := env.Do(t, "POST", "/async-function/whoami", nil, forged...); r.Status != 401 {
		t.Errorf("async call of a user function without token = %d %s", r.Status, r.Body)
	}
}

// TestCallStatusBelongsToTheCaller: the status and result of a user's
// async call are that user's: another user gets 404, no token 401, and
// the same Idempotency-Key of two users names two calls.
func TestCallStatusBelongsToTheCaller(t *testing.T) {
	env := testenv.Start(t, func(o *platform.Options) { testenv.WithUserAuth(t, o) })
	env.Deploy(t, headersManifest("whoami", "/v1/whoami", "user"))
	a, b := testenv.UserToken(t, 81), testenv.UserToken(t, 82)
	call := func(token, key string) string {
		t.Helper()
		r := env.Do(t, "POST", "/async-function/whoami", []byte(`{}`), token, "Idempotency-Key: "+key)
		if r.Status != http.StatusAccepted {
			t.Fatalf("async call = %d %s", r.Status, r.Body)
		}
		return r.Header.Get("X-Call-Id")
	}
	idA, idB := call(a, "same-key"), call(b, "same-key")
	if idA == idB {
		t.Fatalf("two users' calls with one Idempotency-Key share the id %s", idA)
	}
	testenv.Eventually(t, 5*time.Second, "A's call succeeded", func() bool {
		r := env.Do(t, "GET", "/calls/"+idA, nil, a)
		return r.Status == http.StatusOK && strings.Contains(string(r.Body), `"succeeded"`)
	})
	if r := env.Do(t, "GET", "/calls/"+idA, nil, b); r.Status != http.StatusNotFound {
		t.Errorf("B reads A's call: %d %s, want 404", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/calls/"+idA, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("A's call without a token: %d %s, want 401", r.Status, r.Body)
	}
	// Ids made without a key are 128 random bits, not a sequence.
	r := env.Do(t, "POST", "/async-function/whoami", []byte(`{}`), a)
	if id := r.Header.Get("X-Call-Id"); len(id) != 32 {
		t.Errorf("call id %q, want 32 hex digits", id)
	}
}

// TestUserRouteWithoutVerifierIsRefused: a gateway started without JWT
// flags never serves an auth: user route unauthenticated.
func TestUserRouteWithoutVerifierIsRefused(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, headersManifest("whoami", "/v1/whoami", "user"))
	r := env.Do(t, "POST", "/v1/whoami", nil, "Surge-User-Id: 1", "Authorization: Bearer x.y.z")
	if r.Status != http.StatusServiceUnavailable || r.ErrorCode() != "auth_unavailable" {
		t.Fatalf("auth: user route without a verifier = %d %s, want 503 auth_unavailable", r.Status, r.Body)
	}
	var body map[string]map[string]string
	_ = json.Unmarshal(r.Body, &body)
	if !strings.Contains(body["error"]["message"], "not configured") {
		t.Errorf("message = %q", body["error"]["message"])
	}
}
