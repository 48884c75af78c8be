package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"

	_ "github.com/surgefn/surge/functions/all"
	"github.com/surgefn/surge/gateway"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
)

// allManifests are the repository's manifests: every built-in function.
var allManifests = []string{"echo.yaml", "envelopes.yaml", "events.yaml", "orders.yaml",
	"sales.yaml", "signin.yaml", "sms.yaml", "users.yaml"}

const admin = "Authorization: Bearer " + testenv.Token

// openAPI fetches /openapi.json and returns it with a validator for it,
// failing the test when libopenapi cannot build a 3.1 model of it or the
// validator finds the document invalid.
func openAPI(t *testing.T, e *testenv.Env) ([]byte, validator.Validator) {
	t.Helper()
	r := e.Do(t, http.MethodGet, "/openapi.json", nil)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json = %d %s %.200s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	doc, err := libopenapi.NewDocument(r.Body)
	if err != nil {
		t.Fatalf("libopenapi: %v", err)
	}
	if v := doc.GetSpecInfo().VersionNumeric; v != 3.1 {
		t.Fatalf("document version %v, want 3.1", v)
	}
	if _, err := doc.BuildV3Model(); err != nil {
		t.Fatalf("build the 3.1 model: %v", err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("the document is not valid OpenAPI 3.1:\n%s", describe(verrs))
	}
	// OpenAPI requires operation ids to be unique; generators name
	// methods after them.
	var parsed struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &parsed); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for path, item := range parsed.Paths {
		for method, op := range item {
			if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %q of %s %s is also %s's", op.OperationID, method, path, prev)
			}
			ids[op.OperationID] = method + " " + path
		}
	}
	return r.Body, v
}

func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "- %s: %s\n", e.Message, e.Reason)
		for _, s := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "    %s %s: %s\n", s.KeywordLocation, s.FieldPath, s.Reason)
		}
	}
	return b.String()
}

// call is one real request: whether the document accepts the request
// (wantValid), the status it must get, and that its answer must match the
// document.
type call struct {
	name      string
	method    string
	path      string
	body      string
	headers   []string
	wantValid bool
	want      int
}

// check validates c's request against the document, sends it, and
// validates the answer; it returns the answer.
func check(t *testing.T, e *testenv.Env, v validator.Validator, c call) *testenv.Response {
	t.Helper()
	req := newRequest(t, e, c)
	ok, errs := v.ValidateHttpRequestSync(req)
	if ok != c.wantValid {
		t.Errorf("%s: request valid = %v, want %v\n%s", c.name, ok, c.wantValid, describe(errs))
	}
	r := e.Do(t, c.method, c.path, []byte(c.body), c.headers...)
	if r.Status != c.want {
		t.Fatalf("%s: %s %s = %d %s, want %d", c.name, c.method, c.path, r.Status, r.Body, c.want)
	}
	resp := &http.Response{StatusCode: r.Status, Header: r.Header, Body: io.NopCloser(bytes.NewReader(r.Body)),
		Request: newRequest(t, e, c)}
	if ok, errs := v.ValidateHttpResponse(newRequest(t, e, c), resp); !ok {
		t.Errorf("%s: the answer %d %s does not match the document:\n%s", c.name, r.Status, r.Body, describe(errs))
	}
	return r
}

func newRequest(t *testing.T, e *testenv.Env, c call) *http.Request {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, e.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range c.headers {
		k, val, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(val))
	}
	return req
}

// TestOpenAPIMatchesRealCalls checks that /openapi.json of a platform
// running every built-in function is a valid OpenAPI 3.1 document that
// lists every deployed route, and that real requests and answers of the
// built-in routes, the generic invoke and call-status routes and the admin
// routes match it: good input is a valid request, bad input an invalid
// one, and every answer, success or error, matches its schema.
func TestOpenAPIMatchesRealCalls(t *testing.T) {
	e := testenv.StartFunctions(t, false, allManifests...)
	raw, v := openAPI(t, e)

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, file := range allManifests {
		fns, err := manifests.LoadPath(testenv.RepoManifests() + "/" + file)
		if err != nil {
			t.Fatal(err)
		}
		for _, fn := range fns {
			if fn.Spec.HTTP == nil {
				continue
			}
			if _, ok := doc.Paths[fn.Spec.HTTP.Path][strings.ToLower(fn.Spec.HTTP.Method)]; !ok {
				t.Errorf("%s: route %s is not in the document", fn.Metadata.Name, fn.Spec.HTTP.Route())
			}
		}
	}
	// The document lists exactly the gateway's own routes and the deployed
	// ones: none left out, none that is not served.
	served := map[string]bool{}
	for _, r := range gateway.OwnRoutes(e.P.Gateway()) {
		served[r] = true
	}
	for _, file := range allManifests {
		fns, _ := manifests.LoadPath(testenv.RepoManifests() + "/" + file)
		for _, fn := range fns {
			if fn.Spec.HTTP != nil {
				served[strings.ToUpper(fn.Spec.HTTP.Method)+" "+fn.Spec.HTTP.Path] = true
			}
		}
	}
	listed := map[string]bool{}
	for p, item := range doc.Paths {
		for m := range item {
			listed[strings.ToUpper(m)+" "+p] = true
		}
	}
	for r := range served {
		if !listed[r] {
			t.Errorf("served route %s is not in the document", r)
		}
	}
	for r := range listed {
		if !served[r] {
			t.Errorf("the document lists %s, which nothing serves", r)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/admin/functions", "/admin/functions/{name}",
		"/admin/dlq", "/admin/dlq/{function}/replay", "/admin/dlq/{function}/{seq}", "/function/{name}",
		"/async-function/{name}", "/calls/{id}"} {
		if doc.Paths[p] == nil {
			t.Errorf("platform route %s is not in the document", p)
		}
	}

	run := func(c call) *testenv.Response { t.Helper(); return check(t, e, v, c) }
	jsonOf := func(r *testenv.Response) map[string]any {
		t.Helper()
		var m map[string]any
		r.JSON(t, &m)
		return m
	}

	// Orders.
	order := `{"user_id":41,"items":[{"sku":"A1","qty":2,"price_cents":1999}],"currency":"CNY"}`
	accepted := jsonOf(run(call{name: "order accepted", method: "POST", path: "/v1/orders", body: order, wantValid: true, want: 202}))
	run(call{name: "order with an idempotency key", method: "POST", path: "/v1/orders", body: order,
		headers: []string{"Idempotency-Key: k-1"}, wantValid: true, want: 202})
	run(call{name: "order with qty 0", method: "POST", path: "/v1/orders",
		body: `{"user_id":41,"items":[{"sku":"A1","qty":0,"price_cents":1}],"currency":"CNY"}`, want: 400})
	run(call{name: "order with an unknown field", method: "POST", path: "/v1/orders",
		body: `{"user_id":41,"items":[{"sku":"A1","qty":1,"price_cents":1}],"currency":"CNY","coupon":"x"}`, want: 400})
	run(call{name: "order without items", method: "POST", path: "/v1/orders", body: `{"user_id":41,"items":[],"currency":"CNY"}`, want: 400})
	id := accepted["order_id"].(string)
	testenv.Eventually(t, 5*time.Second, "order stored", func() bool {
		return e.Do(t, "GET", "/v1/orders/"+id, nil).Status == 200
	})
	run(call{name: "stored order", method: "GET", path: "/v1/orders/" + id, wantValid: true, want: 200})
	run(call{name: "missing order", method: "GET", path: "/v1/orders/no-such-order", wantValid: true, want: 404})
	run(call{name: "malformed order id", method: "GET", path: "/v1/orders/bad!id", want: 400})
	run(call{name: "first page (hot cache)", method: "GET", path: "/v1/users/41/orders", wantValid: true, want: 200})
	run(call{name: "second page (store)", method: "GET", path: "/v1/users/41/orders?page=2&size=1", wantValid: true, want: 200})
	run(call{name: "page after an order (keyset)", method: "GET", path: "/v1/users/41/orders?size=5&after=" + id, wantValid: true, want: 200})
	run(call{name: "page after an unknown order", method: "GET", path: "/v1/users/41/orders?after=no-such-order", wantValid: true, want: 400})
	run(call{name: "page after a malformed order id", method: "GET", path: "/v1/users/41/orders?after=bad!id", want: 400})
	run(call{name: "page size too large", method: "GET", path: "/v1/users/41/orders?size=1000", want: 400})
	run(call{name: "user id not a number", method: "GET", path: "/v1/users/abc/orders", want: 400})

	// Sign-in, SMS, events.
	run(call{name: "sign-in", method: "POST", path: "/v1/signin", body: `{"user_id":41}`, wantValid: true, want: 200})
	run(call{name: "sign-in again", method: "POST", path: "/v1/signin", body: `{"user_id":41}`, wantValid: true, want: 200})
	run(call{name: "sign-in of user 0", method: "POST", path: "/v1/signin", body: `{"user_id":0}`, want: 400})
	sms := jsonOf(run(call{name: "sms", method: "POST", path: "/v1/sms",
		body: `{"phone":"+8613800138000","template":"verify","params":{"code":"123456"}}`, wantValid: true, want: 202}))
	run(call{name: "sms to a bad phone", method: "POST", path: "/v1/sms",
		body: `{"phone":"12","template":"verify","params":{"code":"123456"}}`, want: 400})
	run(call{name: "sms of an unknown template", method: "POST", path: "/v1/sms",
		body: `{"phone":"+8613800138001","template":"nope"}`, want: 400})
	run(call{name: "sms status", method: "GET", path: "/v1/sms/" + sms["message_id"].(string), wantValid: true, want: 200})
	run(call{name: "missing sms", method: "GET", path: "/v1/sms/nope", wantValid: true, want: 404})
	run(call{name: "one event", method: "POST", path: "/v1/events",
		body: `{"user_id":41,"type":"view","item_id":"A1","ts":"2026-05-01T12:00:00Z"}`, wantValid: true, want: 202})
	run(call{name: "events", method: "POST", path: "/v1/events",
		body:      `[{"user_id":41,"type":"buy","item_id":"A1","ts":"2026-05-01T12:00:00Z"},{"user_id":42,"type":"cart","item_id":"B2","ts":"2026-05-01T12:00:01Z"}]`,
		wantValid: true, want: 202})
	run(call{name: "event of an unknown type", method: "POST", path: "/v1/events",
		body: `{"user_id":41,"type":"like","item_id":"A1","ts":"2026-05-01T12:00:00Z"}`, want: 400})
	run(call{name: "event with a bad time", method: "POST", path: "/v1/events",
		body: `{"user_id":41,"type":"view","item_id":"A1","ts":"yesterday"}`, want: 400})
	run(call{name: "item stats", method: "GET", path: "/v1/items/A1/stats", wantValid: true, want: 200})

	// The user centre.
	run(call{name: "profile before the first PUT", method: "GET", path: "/v1/users/7", wantValid: true, want: 404})
	run(call{name: "first PUT", method: "PUT", path: "/v1/users/7", body: `{"name":"Ann","level":1}`, wantValid: true, want: 200})
	run(call{name: "profile", method: "GET", path: "/v1/users/7", wantValid: true, want: 200})
	run(call{name: "PUT without If-Match", method: "PUT", path: "/v1/users/7", body: `{"name":"Bea","level":2}`, wantValid: true, want: 428})
	run(call{name: "PUT with a stale If-Match", method: "PUT", path: "/v1/users/7", body: `{"name":"Bea","level":2}`,
		headers: []string{`If-Match: "9"`}, wantValid: true, want: 412})
	run(call{name: "PUT with If-Match", method: "PUT", path: "/v1/users/7", body: `{"name":"Bea","level":2}`,
		headers: []string{`If-Match: "1"`}, wantValid: true, want: 200})
	run(call{name: "PUT without a level", method: "PUT", path: "/v1/users/7", body: `{"name":"Bea"}`, want: 400})

	// Flash sales.
	now := time.Now().UTC()
	sale := fmt.Sprintf(`{"sku":"P1","stock":5,"price_cents":999,"currency":"CNY","per_user":1,"starts_at":%q,"ends_at":%q}`,
		now.Add(-time.Minute).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	run(call{name: "sale without the admin token", method: "PUT", path: "/v1/sales/s1", body: sale, want: 401})
	run(call{name: "sale", method: "PUT", path: "/v1/sales/s1", body: sale, headers: []string{admin}, wantValid: true, want: 200})
	run(call{name: "sale with stock -1", method: "PUT", path: "/v1/sales/s2", headers: []string{admin},
		body: strings.Replace(sale, `"stock":5`, `"stock":-1`, 1), want: 400})
	run(call{name: "sale view", method: "GET", path: "/v1/sales/s1", wantValid: true, want: 200})
	run(call{name: "unknown sale", method: "GET", path: "/v1/sales/nope", wantValid: true, want: 404})
	run(call{name: "sale order", method: "POST", path: "/v1/sales/s1/orders", body: `{"user_id":41,"qty":1}`, wantValid: true, want: 202})
	run(call{name: "sale order past the limit", method: "POST", path: "/v1/sales/s1/orders", body: `{"user_id":41,"qty":1}`, wantValid: true, want: 409})
	run(call{name: "sale order of qty 0", method: "POST", path: "/v1/sales/s1/orders", body: `{"user_id":42,"qty":0}`, want: 400})

	// Red envelopes.
	env := jsonOf(run(call{name: "envelope", method: "POST", path: "/v1/envelopes",
		body: `{"sender_id":1,"total_cents":100,"count":2}`, wantValid: true, want: 201}))
	eid := env["envelope_id"].(string)
	run(call{name: "envelope before any grab", method: "GET", path: "/v1/envelopes/" + eid, wantValid: true, want: 200})
	run(call{name: "grab", method: "POST", path: "/v1/envelopes/" + eid + "/grab", body: `{"user_id":2}`, wantValid: true, want: 200})
	run(call{name: "grab again", method: "POST", path: "/v1/envelopes/" + eid + "/grab", body: `{"user_id":2}`, wantValid: true, want: 200})
	run(call{name: "last grab", method: "POST", path: "/v1/envelopes/" + eid + "/grab", body: `{"user_id":3}`, wantValid: true, want: 200})
	run(call{name: "grab of an empty envelope", method: "POST", path: "/v1/envelopes/" + eid + "/grab", body: `{"user_id":4}`, wantValid: true, want: 410})
	run(call{name: "envelope", method: "GET", path: "/v1/envelopes/" + eid, wantValid: true, want: 200})
	run(call{name: "envelope of 0 shares", method: "POST", path: "/v1/envelopes", body: `{"sender_id":1,"total_cents":100,"count":0}`, want: 400})

	// Echo, calls by name, call status.
	run(call{name: "echo", method: "POST", path: "/v1/echo", body: `{"a":[1,"b"]}`, wantValid: true, want: 200})
	run(call{name: "echo by name", method: "POST", path: "/function/echo", body: `{"a":1}`, wantValid: true, want: 200})
	run(call{name: "unknown function by name", method: "POST", path: "/function/no-such-fn", body: `{}`, wantValid: true, want: 404})
	queued := run(call{name: "echo queued", method: "POST", path: "/async-function/echo", body: `{"a":1}`, wantValid: true, want: 202})
	callID := queued.Header.Get("X-Call-Id")
	testenv.Eventually(t, 5*time.Second, "async call done", func() bool {
		var st struct{ Status string }
		r := e.Do(t, "GET", "/calls/"+callID, nil)
		return r.Status == 200 && json.Unmarshal(r.Body, &st) == nil && st.Status == "succeeded"
	})
	run(call{name: "call status", method: "GET", path: "/calls/" + callID, wantValid: true, want: 200})
	run(call{name: "unknown call", method: "GET", path: "/calls/nope", wantValid: true, want: 404})

	// At every bound a schema states, its verdict is the function's: the
	// tags' numbers are the code's.
	items := func(n int) string {
		return `{"user_id":41,"items":[` + strings.Repeat(`{"sku":"A1","qty":1,"price_cents":1},`, n-1) + `{"sku":"A1","qty":1,"price_cents":1}],"currency":"CNY"}`
	}
	events := func(n int) string {
		ev := `{"user_id":41,"type":"view","item_id":"A1","ts":"2026-05-01T12:00:00Z"}`
		return "[" + strings.Repeat(ev+",", n-1) + ev + "]"
	}
	x := strings.Repeat
	for _, c := range []call{
		{name: "order of qty 999", method: "POST", path: "/v1/orders", body: strings.Replace(order, `"qty":2`, `"qty":999`, 1), wantValid: true, want: 202},
		{name: "order of qty 1000", method: "POST", path: "/v1/orders", body: strings.Replace(order, `"qty":2`, `"qty":1000`, 1), want: 400},
		{name: "order of a 64-character sku", method: "POST", path: "/v1/orders", body: strings.Replace(order, `"A1"`, `"`+x("s", 64)+`"`, 1), wantValid: true, want: 202},
		{name: "order of a 65-character sku", method: "POST", path: "/v1/orders", body: strings.Replace(order, `"A1"`, `"`+x("s", 65)+`"`, 1), want: 400},
		{name: "order of 100 items", method: "POST", path: "/v1/orders", body: items(100), wantValid: true, want: 202},
		{name: "order of 101 items", method: "POST", path: "/v1/orders", body: items(101), want: 400},
		{name: "order in an unknown currency", method: "POST", path: "/v1/orders", body: strings.Replace(order, `"CNY"`, `"XXX"`, 1), want: 400},
		{name: "order in lower case", method: "POST", path: "/v1/orders", body: strings.Replace(order, `"CNY"`, `"cny"`, 1), want: 400},
		{name: "order in USD", method: "POST", path: "/v1/orders", body: strings.Replace(order, `"CNY"`, `"USD"`, 1), wantValid: true, want: 202},
		{name: "sale in an unknown currency", method: "PUT", path: "/v1/sales/s4", headers: []string{admin}, want: 400, body: strings.Replace(sale, `"CNY"`, `"XXX"`, 1)},
		{name: "page of 100", method: "GET", path: "/v1/users/41/orders?size=100", wantValid: true, want: 200},
		{name: "page of 101", method: "GET", path: "/v1/users/41/orders?size=101", want: 400},
		{name: "page 0", method: "GET", path: "/v1/users/41/orders?page=0", want: 400},
		{name: "64-character name", method: "PUT", path: "/v1/users/8", body: `{"name":"` + x("n", 64) + `","level":1000000}`, wantValid: true, want: 200},
		{name: "65-character name", method: "PUT", path: "/v1/users/9", body: `{"name":"` + x("n", 65) + `","level":1}`, want: 400},
		{name: "level 1000001", method: "PUT", path: "/v1/users/9", body: `{"name":"n","level":1000001}`, want: 400},
		{name: "largest envelope", method: "POST", path: "/v1/envelopes", body: `{"sender_id":1,"total_cents":10000000,"count":1000}`, wantValid: true, want: 201},
		{name: "envelope of 1001 shares", method: "POST", path: "/v1/envelopes", body: `{"sender_id":1,"total_cents":10000000,"count":1001}`, want: 400},
		{name: "envelope over the total", method: "POST", path: "/v1/envelopes", body: `{"sender_id":1,"total_cents":10000001,"count":1}`, want: 400},
		{name: "largest sale", method: "PUT", path: "/v1/sales/s3", headers: []string{admin}, wantValid: true, want: 200,
			body: strings.NewReplacer(`"stock":5`, `"stock":100000`, `"per_user":1`, `"per_user":100`, `"price_cents":999`, `"price_cents":1099511627776`).Replace(sale)},
		{name: "sale over the stock bound", method: "PUT", path: "/v1/sales/s4", headers: []string{admin}, want: 400, body: strings.Replace(sale, `"stock":5`, `"stock":1000001`, 1)},
		{name: "sale over the per-user bound", method: "PUT", path: "/v1/sales/s4", headers: []string{admin}, want: 400, body: strings.Replace(sale, `"per_user":1`, `"per_user":101`, 1)},
		{name: "sale over the price bound", method: "PUT", path: "/v1/sales/s4", headers: []string{admin}, want: 400, body: strings.Replace(sale, `"price_cents":999`, `"price_cents":1099511627777`, 1)},
		{name: "sale order of qty 100", method: "POST", path: "/v1/sales/s1/orders", body: `{"user_id":43,"qty":100}`, wantValid: true, want: 409},
		{name: "sale order of qty 101", method: "POST", path: "/v1/sales/s1/orders", body: `{"user_id":43,"qty":101}`, want: 400},
		{name: "64-character item id", method: "POST", path: "/v1/events", body: `{"user_id":41,"type":"view","item_id":"` + x("i", 64) + `","ts":"2026-05-01T12:00:00Z"}`, wantValid: true, want: 202},
		{name: "65-character item id", method: "POST", path: "/v1/events", body: `{"user_id":41,"type":"view","item_id":"` + x("i", 65) + `","ts":"2026-05-01T12:00:00Z"}`, want: 400},
		{name: "1000 events", method: "POST", path: "/v1/events", body: events(1000), wantValid: true, want: 202},
		{name: "1001 events", method: "POST", path: "/v1/events", body: events(1001), want: 400},
		{name: "no events", method: "POST", path: "/v1/events", body: `[]`, want: 400},
		{name: "15-digit phone", method: "POST", path: "/v1/sms", body: `{"phone":"+123456789012345","template":"verify","params":{"code":"123456"}}`, wantValid: true, want: 202},
		{name: "16-digit phone", method: "POST", path: "/v1/sms", body: `{"phone":"+1234567890123456","template":"verify","params":{"code":"123456"}}`, want: 400},
	} {
		run(c)
	}

	// Platform and admin routes.
	run(call{name: "healthz", method: "GET", path: "/healthz", wantValid: true, want: 200})
	run(call{name: "readyz", method: "GET", path: "/readyz", wantValid: true, want: 200})
	run(call{name: "functions", method: "GET", path: "/admin/functions", headers: []string{admin}, wantValid: true, want: 200})
	run(call{name: "functions without the token", method: "GET", path: "/admin/functions", want: 401})
	run(call{name: "overview", method: "GET", path: "/admin/overview", headers: []string{admin}, wantValid: true, want: 200})
	run(call{name: "function", method: "GET", path: "/admin/functions/order-accept", headers: []string{admin}, wantValid: true, want: 200})
	run(call{name: "unknown function", method: "GET", path: "/admin/functions/nope", headers: []string{admin}, wantValid: true, want: 404})
	run(call{name: "dead letters", method: "GET", path: "/admin/dlq?function=sms-sender", headers: []string{admin}, wantValid: true, want: 200})
}

// TestOpenAPIFollowsDeploys checks that a deployed function's route
// appears in /openapi.json, with a generic JSON body and answer for a
// function that describes none and the user-token scheme for auth: user,
// and that removing the function removes it.
func TestOpenAPIFollowsDeploys(t *testing.T) {
	e := testenv.Start(t, nil)
	paths := func() map[string]map[string]map[string]any {
		raw, _ := openAPI(t, e)
		var doc struct {
			Paths map[string]map[string]map[string]any `json:"paths"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Paths
	}
	if p := paths(); p["/v1/greetings/{who}"] != nil {
		t.Fatalf("route listed before the deploy: %v", p["/v1/greetings/{who}"])
	}
	e.Deploy(t, `apiVersion: surge/v1
kind: Function
metadata: {name: greeter}
spec:
  handler: external
  trigger: {subject: fn.greeter}
  http: {method: POST, path: "/v1/greetings/{who}", auth: user}
`)
	op := paths()["/v1/greetings/{who}"]["post"]
	if op == nil {
		t.Fatal("the deployed route is not in the document")
	}
	_, v := openAPI(t, e)
	for _, c := range []call{
		{name: "greeting without a user token", method: "POST", path: "/v1/greetings/ann", body: `{"any":["json"]}`},
		{name: "greeting with a user token", method: "POST", path: "/v1/greetings/ann", body: `{"any":["json"]}`,
			headers: []string{testenv.UserToken(t, 7)}, wantValid: true},
	} {
		if ok, errs := v.ValidateHttpRequestSync(newRequest(t, e, c)); ok != c.wantValid {
			t.Errorf("%s: request valid = %v, want %v\n%s", c.name, ok, c.wantValid, describe(errs))
		}
	}
	b, _ := json.Marshal(op)
	for _, want := range []string{`"operationId":"greeter"`, `"userJWT":[]`, `"name":"who"`, `"in":"path"`,
		`"requestBody":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/AnyJSON"}}}}`,
		`"200":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/AnyJSON"}}}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("operation lacks %s:\n%s", want, b)
		}
	}
	if r := e.Do(t, "DELETE", "/admin/functions/greeter", nil, admin); r.Status != http.StatusNoContent {
		t.Fatalf("delete = %d %s", r.Status, r.Body)
	}
	testenv.Eventually(t, 5*time.Second, "route gone from /openapi.json", func() bool {
		_, listed := paths()["/v1/greetings/{who}"]
		return !listed
	})
	if p := paths(); !slices.ContainsFunc([]string{"/healthz", "/function/{name}"}, func(k string) bool { return p[k] != nil }) {
		t.Error("platform routes missing after the removal")
	}
	// Functions named like platform routes keep operation ids unique
	// (openAPI checks every id of the document).
	for _, name := range []string{"metrics", "healthz", "overview", "console", "openapi"} {
		e.Deploy(t, fmt.Sprintf(`apiVersion: surge/v1
kind: Function
metadata: {name: %s}
spec:
  handler: external
  trigger: {subject: fn.named.%s}
  http: {method: GET, path: /v1/named/%s}
`, name, name, name))
	}
	openAPI(t, e)
}
