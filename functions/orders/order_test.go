package orders

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime"
)

const validBody = `{"user_id":1,"items":[{"sku":"A1","qty":2,"price_cents":1999}],"currency":"CNY"}`

func items(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `{"sku":"S","qty":1,"price_cents":1}`
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func body(user, itemsJSON, currency string) string {
	return `{"user_id":` + user + `,"items":` + itemsJSON + `,"currency":` + currency + `}`
}

const oneItem = `[{"sku":"A1","qty":2,"price_cents":1999}]`

// validationCases are the rules every order obeys, for POST /v1/orders
// and (with an order_id added) for orders.submit. wantField "" means valid.
var validationCases = []struct {
	name      string
	body      string
	wantField string
	wantTotal int64
}{
	{name: "valid", body: validBody, wantTotal: 3998},
	{name: "valid several items", body: body("7", `[{"sku":"A","qty":1,"price_cents":5},{"sku":"B","qty":3,"price_cents":10}]`, `"USD"`), wantTotal: 35},
	{name: "white space and key order", body: " {\"currency\":\"EUR\",\n\"items\":" + oneItem + ",\"user_id\":2}\n", wantTotal: 3998},
	{name: "json matches keys case-insensitively", body: `{"User_ID":1,"items":` + oneItem + `,"currency":"CNY"}`, wantTotal: 3998},

	{name: "malformed", body: `{"user_id":1,`, wantField: "body"},
	{name: "malformed token", body: `{"user_id":1,"items":[}`, wantField: "body"},
	{name: "empty body", body: ``, wantField: "body"},
	{name: "only spaces", body: "  \n", wantField: "body"},
	{name: "array body", body: `[1]`, wantField: "body"},
	{name: "null body", body: `null`, wantField: "body"},
	{name: "trailing data", body: validBody + ` x`, wantField: "body"},
	{name: "two objects", body: validBody + validBody, wantField: "body"},

	{name: "unknown field", body: `{"user_id":1,"items":` + oneItem + `,"currency":"CNY","coupon":"X"}`, wantField: "coupon"},
	{name: "unknown item field", body: body("1", `[{"sku":"A","qty":1,"price_cents":1},{"sku":"A","qty":1,"price_cents":1,"colour":"red"}]`, `"CNY"`), wantField: "items[1].colour"},

	{name: "user_id missing", body: `{"items":` + oneItem + `,"currency":"CNY"}`, wantField: "user_id"},
	{name: "user_id zero", body: body("0", oneItem, `"CNY"`), wantField: "user_id"},
	{name: "user_id negative", body: body("-5", oneItem, `"CNY"`), wantField: "user_id"},
	{name: "user_id fraction", body: body("1.5", oneItem, `"CNY"`), wantField: "user_id"},
	{name: "user_id exponent", body: body("1e3", oneItem, `"CNY"`), wantField: "user_id"},
	{name: "user_id string", body: body(`"1"`, oneItem, `"CNY"`), wantField: "user_id"},
	{name: "user_id null", body: body(`null`, oneItem, `"CNY"`), wantField: "user_id"},
	{name: "user_id over int64", body: body("9223372036854775808", oneItem, `"CNY"`), wantField: "user_id"},
	{name: "user_id max int64", body: body("9223372036854775807", oneItem, `"CNY"`), wantTotal: 3998},

	{name: "items missing", body: `{"user_id":1,"currency":"CNY"}`, wantField: "items"},
	{name: "items empty", body: body("1", `[]`, `"CNY"`), wantField: "items"},
	{name: "items 100", body: body("1", items(100), `"CNY"`), wantTotal: 100},
	{name: "items 101", body: body("1", items(101), `"CNY"`), wantField: "items"},
	{name: "items not array", body: body("1", `{"sku":"A"}`, `"CNY"`), wantField: "items"},
	{name: "item not object", body: body("1", `[{"sku":"A","qty":1,"price_cents":1},3]`, `"CNY"`), wantField: "items[1]"},

	{name: "sku missing", body: body("1", `[{"qty":1,"price_cents":1}]`, `"CNY"`), wantField: "items[0].sku"},
	{name: "sku empty", body: body("1", `[{"sku":"","qty":1,"price_cents":1}]`, `"CNY"`), wantField: "items[0].sku"},
	{name: "sku 64 chars", body: body("1", `[{"sku":"`+strings.Repeat("x", 64)+`","qty":1,"price_cents":1}]`, `"CNY"`), wantTotal: 1},
	{name: "sku 64 multibyte chars", body: body("1", `[{"sku":"`+strings.Repeat("货", 64)+`","qty":1,"price_cents":1}]`, `"CNY"`), wantTotal: 1},
	{name: "sku 65 chars", body: body("1", `[{"sku":"`+strings.Repeat("x", 65)+`","qty":1,"price_cents":1}]`, `"CNY"`), wantField: "items[0].sku"},
	{name: "sku number", body: body("1", `[{"sku":12,"qty":1,"price_cents":1}]`, `"CNY"`), wantField: "items[0].sku"},

	{name: "qty zero", body: body("1", `[{"sku":"A","qty":0,"price_cents":1}]`, `"CNY"`), wantField: "items[0].qty"},
	{name: "qty missing", body: body("1", `[{"sku":"A","price_cents":1}]`, `"CNY"`), wantField: "items[0].qty"},
	{name: "qty 999", body: body("1", `[{"sku":"A","qty":999,"price_cents":1}]`, `"CNY"`), wantTotal: 999},
	{name: "qty 1000", body: body("1", `[{"sku":"A","qty":1000,"price_cents":1}]`, `"CNY"`), wantField: "items[0].qty"},
	{name: "qty negative in second item", body: body("1", `[{"sku":"A","qty":1,"price_cents":1},{"sku":"B","qty":-1,"price_cents":1}]`, `"CNY"`), wantField: "items[1].qty"},
	{name: "qty string", body: body("1", `[{"sku":"A","qty":1,"price_cents":1},{"sku":"A","qty":"2","price_cents":1}]`, `"CNY"`), wantField: "items[1].qty"},
	{name: "qty fraction", body: body("1", `[{"sku":"A","qty":1.5,"price_cents":1}]`, `"CNY"`), wantField: "items[0].qty"},

	{name: "price zero", body: body("1", `[{"sku":"A","qty":3,"price_cents":0}]`, `"CNY"`), wantTotal: 0},
	{name: "price negative", body: body("1", `[{"sku":"A","qty":1,"price_cents":-1}]`, `"CNY"`), wantField: "items[0].price_cents"},
	{name: "price string", body: body("1", `[{"sku":"A","qty":1,"price_cents":"1"}]`, `"CNY"`), wantField: "items[0].price_cents"},
	{name: "line overflow", body: body("1", `[{"sku":"A","qty":2,"price_cents":9223372036854775807}]`, `"CNY"`), wantField: "items[0].price_cents"},
	{name: "sum overflow", body: body("1", `[{"sku":"A","qty":1,"price_cents":9223372036854775807},{"sku":"B","qty":1,"price_cents":1}]`, `"CNY"`), wantField: "items[1].price_cents"},
	{name: "max total", body: body("1", `[{"sku":"A","qty":1,"price_cents":9223372036854775806},{"sku":"B","qty":1,"price_cents":1}]`, `"CNY"`), wantTotal: 9223372036854775807},

	{name: "currency missing", body: `{"user_id":1,"items":` + oneItem + `}`, wantField: "currency"},
	{name: "currency lower case", body: body("1", oneItem, `"cny"`), wantField: "currency"},
	{name: "currency unknown", body: body("1", oneItem, `"XXX"`), wantField: "currency"},
	{name: "currency two letters", body: body("1", oneItem, `"CN"`), wantField: "currency"},
	{name: "currency number", body: body("1", oneItem, `840`), wantField: "currency"},
	{name: "currency JPY", body: body("1", oneItem, `"JPY"`), wantTotal: 3998},
	{name: "currency HKD", body: body("1", oneItem, `"HKD"`), wantTotal: 3998},
}

// checkErr asserts err is a 400 naming wantField.
func checkErr(t *testing.T, err *runtime.Error, wantField string) {
	t.Helper()
	if wantField == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one naming %q", wantField)
	}
	if err.Status != http.StatusBadRequest || err.Code != "invalid_request" {
		t.Errorf("status %d code %q, want 400 invalid_request", err.Status, err.Code)
	}
	if !strings.HasPrefix(err.Msg, wantField+": ") {
		t.Errorf("message %q does not name field %q", err.Msg, wantField)
	}
}

func TestAcceptValidation(t *testing.T) {
	for _, tc := range validationCases {
		t.Run(tc.name, func(t *testing.T) {
			var in orderInput
			err := decodeStrict([]byte(tc.body), &in, acceptFields)
			var total int64
			if err == nil {
				total, err = in.validate()
			}
			checkErr(t, err, tc.wantField)
			if err == nil && total != tc.wantTotal {
				t.Errorf("total = %d, want %d", total, tc.wantTotal)
			}
		})
	}
}

// withOrderID turns an accept body into an orders.submit message.
func withOrderID(body, id string) string {
	i := strings.IndexByte(body, '{')
	if i < 0 || strings.HasPrefix(strings.TrimSpace(body), "[") || strings.TrimSpace(body) == "null" {
		return body
	}
	return body[:i+1] + `"order_id":"` + id + `",` + body[i+1:]
}

var fixedNow = time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.UTC)

func TestSubmitValidation(t *testing.T) {
	// Every accept rule holds on orders.submit too.
	for _, tc := range validationCases {
		t.Run("shared/"+tc.name, func(t *testing.T) {
			if tc.name == "malformed" {
				tc.body = `{"order_id":"o1","user_id":1,`
			}
			o, err := decodeSubmit([]byte(withOrderID(tc.body, "o1")), func() time.Time { return fixedNow })
			checkErr(t, err, tc.wantField)
			if err == nil && (o.TotalCents != tc.wantTotal || o.OrderID != "o1" || o.Status != StatusAccepted) {
				t.Errorf("order = %+v", o)
			}
		})
	}
	const items = `"items":[{"sku":"A1","qty":2,"price_cents":1999}],"currency":"CNY"`
	tests := []struct {
		name      string
		body      string
		wantField string
	}{
		{"order_id missing", `{"user_id":1,` + items + `}`, "order_id"},
		{"order_id empty", `{"order_id":"","user_id":1,` + items + `}`, "order_id"},
		{"order_id 64", `{"order_id":"` + strings.Repeat("a", 64) + `","user_id":1,` + items + `}`, ""},
		{"order_id 65", `{"order_id":"` + strings.Repeat("a", 65) + `","user_id":1,` + items + `}`, "order_id"},
		{"order_id space", `{"order_id":"a b","user_id":1,` + items + `}`, "order_id"},
		{"order_id dot", `{"order_id":"a.b","user_id":1,` + items + `}`, "order_id"},
		{"order_id non-ascii", `{"order_id":"ä","user_id":1,` + items + `}`, "order_id"},
		{"order_id all allowed", `{"order_id":"AZaz09_-","user_id":1,` + items + `}`, ""},
		{"order_id number", `{"order_id":12,"user_id":1,` + items + `}`, "order_id"},
		{"order_id checked before the rest", `{"order_id":"","user_id":0,` + items + `}`, "order_id"},
		{"created_at invalid", `{"order_id":"o","created_at":"yesterday","user_id":1,` + items + `}`, "created_at"},
		{"created_at number", `{"order_id":"o","created_at":5,"user_id":1,` + items + `}`, "created_at"},
		{"created_at valid", `{"order_id":"o","created_at":"2024-01-02T03:04:05.5+08:00","user_id":1,` + items + `}`, ""},
		{"total matches", `{"order_id":"o","total_cents":3998,"user_id":1,` + items + `}`, ""},
		{"total mismatch", `{"order_id":"o","total_cents":1,"user_id":1,` + items + `}`, "total_cents"},
		{"total string", `{"order_id":"o","total_cents":"3998","user_id":1,` + items + `}`, "total_cents"},
		{"status is not an input", `{"order_id":"o","status":"paid","user_id":1,` + items + `}`, "status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeSubmit([]byte(tc.body), func() time.Time { return fixedNow })
			checkErr(t, err, tc.wantField)
		})
	}
}

func TestSubmitCreatedAt(t *testing.T) {
	o, err := decodeSubmit([]byte(withOrderID(validBody, "o1")), func() time.Time { return fixedNow })
	if err != nil {
		t.Fatal(err)
	}
	if want := fixedNow.Truncate(time.Microsecond); !o.CreatedAt.Equal(want) || o.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at without one in the message = %v, want the clock's %v in UTC", o.CreatedAt, want)
	}
	o, err = decodeSubmit([]byte(`{"order_id":"o","created_at":"2024-01-02T03:04:05.5+08:00","user_id":1,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"USD"}`),
		func() time.Time { t.Fatal("clock read although the order has created_at"); return time.Time{} })
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 1, 1, 19, 4, 5, 5e8, time.UTC); !o.CreatedAt.Equal(want) || o.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at = %v, want %v", o.CreatedAt, want)
	}
}

func TestExplainKeepsTypeErrorsSpecific(t *testing.T) {
	// The fallback message of explain is never reached by the schemas'
	// own errors; a decode error it cannot place still names the body.
	e := explain([]byte(`{"user_id":1}`), errors.New("json: strange"), acceptFields)
	checkErr(t, e, "body")
}

func TestKnownCurrency(t *testing.T) {
	for _, c := range strings.Fields(currencies) {
		if !knownCurrency(c) {
			t.Errorf("%s not known", c)
		}
	}
	for _, c := range []string{"", "A", "CN", "CNYY", "cny", "Cny", "XXX", "XAU", "ZZZ", "AAA", "C1Y", "CN\x00"} {
		if knownCurrency(c) {
			t.Errorf("%q known", c)
		}
	}
}
