package orders

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// canonicalSeeds are orders.submit messages as order-accept writes them.
func canonicalSeeds() [][]byte {
	at := time.Date(2026, 11, 21, 14, 5, 6, 123456000, time.UTC)
	inputs := []orderInput{
		{UserID: 42, Currency: "CNY", Items: []item{{SKU: "SKU-1", Qty: 2, PriceCents: 1999}}},
		{UserID: 1<<63 - 1, Currency: "USD", Items: []item{{SKU: "a", Qty: 999, PriceCents: 0}, {SKU: "茶-☕", Qty: 1, PriceCents: 1<<62 - 1}}},
		{UserID: 7, Currency: "EUR", Items: []item{{SKU: `quote"back\slash`, Qty: 1, PriceCents: 5}}}, // escaped: not canonical
		{UserID: 7, Currency: "EUR", Items: []item{{SKU: "tab\there", Qty: 1, PriceCents: 5}}},
		{UserID: 7, Currency: "EUR", Items: []item{{SKU: "line\u2028sep", Qty: 1, PriceCents: 5}}},
	}
	var out [][]byte
	for _, in := range inputs {
		total, _ := in.validate()
		b := appendCanonical(nil, &in, total)
		out = append(out, appendIdentity(b, "01JD0000000000000000000000", at))
	}
	return out
}

func TestDecodeCanonicalTakesAcceptOutput(t *testing.T) {
	seeds := canonicalSeeds()
	for i, msg := range seeds[:2] {
		var in submitInput
		if !decodeCanonical(msg, &in) {
			t.Fatalf("seed %d: the fast path refused order-accept's own output: %s", i, msg)
		}
		if in.OrderID != "01JD0000000000000000000000" || in.CreatedAt != "2026-11-21T14:05:06.123456Z" || in.TotalCents == nil {
			t.Errorf("seed %d: decoded %+v", i, in)
		}
	}
	var in submitInput
	if !decodeCanonical(seeds[1], &in) || in.UserID != 1<<63-1 || in.Items[1].SKU != "茶-☕" || in.Items[1].PriceCents != 1<<62-1 {
		t.Errorf("seed 1 decoded %+v", in)
	}
	// Strings with escapes are left to encoding/json.
	for i, msg := range seeds[2:] {
		if decodeCanonical(msg, &in) {
			t.Errorf("seed %d: escaped string taken by the fast path: %s", i+2, msg)
		}
	}
}

// TestAppendSubmitTakesTheFastPath: what AppendSubmit writes (a flash
// sale's orders) is decoded by the fast path, to the order it was made of.
func TestAppendSubmitTakesTheFastPath(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 123456000, time.UTC)
	msg := AppendSubmit(nil, &LineOrder{OrderID: "s1-42-1", UserID: 42, SKU: "P\"1", Qty: 2, PriceCents: 999, Currency: "CNY", CreatedAt: at})
	var strict submitInput
	if err := json.Unmarshal(msg, &strict); err != nil {
		t.Fatalf("%s: %v", msg, err)
	}
	plain := AppendSubmit(nil, &LineOrder{OrderID: "s1-42-1", UserID: 42, SKU: "P1", Qty: 2, PriceCents: 999, Currency: "CNY", CreatedAt: at})
	var in submitInput
	if !decodeCanonical(plain, &in) {
		t.Fatalf("the fast path refused %s", plain)
	}
	if in.OrderID != "s1-42-1" || in.UserID != 42 || len(in.Items) != 1 || in.Items[0] != (item{SKU: "P1", Qty: 2, PriceCents: 999}) ||
		in.Currency != "CNY" || in.TotalCents == nil || *in.TotalCents != 1998 || in.CreatedAt != "2026-12-02T10:00:00.123456Z" {
		t.Errorf("decoded %+v", in)
	}
	if strict.Items[0].SKU != `P"1` || *strict.TotalCents != 1998 {
		t.Errorf("an escaped SKU decoded strictly to %+v", strict)
	}
}

func TestDecodeCanonicalRefuses(t *testing.T) {
	good := string(canonicalSeeds()[0])
	for _, tc := range []struct{ name, msg string }{
		{"space after the object", good + " "},
		{"space inside", strings.Replace(good, `"qty":2`, `"qty": 2`, 1)},
		{"fraction", strings.Replace(good, `"qty":2`, `"qty":2.0`, 1)},
		{"exponent", strings.Replace(good, `"price_cents":1999`, `"price_cents":1e3`, 1)},
		{"leading zero", strings.Replace(good, `"qty":2`, `"qty":02`, 1)},
		{"int64 overflow", strings.Replace(good, `"user_id":42`, `"user_id":9223372036854775808`, 1)},
		{"20 digits", strings.Replace(good, `"user_id":42`, `"user_id":10000000000000000000`, 1)},
		{"upper-case key", strings.Replace(good, `"user_id"`, `"USER_ID"`, 1)},
		{"fields reordered", strings.Replace(good, `{"user_id":42,"items"`, `{"items"`, 1)},
		{"extra field", strings.Replace(good, `}`+"\x00", ``, 1)[:len(good)-1] + `,"x":1}`},
		{"no items", strings.Replace(good, `{"sku":"SKU-1","qty":2,"price_cents":1999}`, ``, 1)},
		{"invalid UTF-8", strings.Replace(good, `SKU-1`, "SKU-\xff", 1)},
		{"null", strings.Replace(good, `"currency":"CNY"`, `"currency":null`, 1)},
		{"truncated", good[:len(good)-2]},
		{"empty", ""},
	} {
		var in submitInput
		if decodeCanonical([]byte(tc.msg), &in) {
			t.Errorf("%s: taken by the fast path: %s", tc.name, tc.msg)
		}
	}
	var in submitInput
	for _, msg := range []string{
		strings.Replace(good, `,"total_cents":3998,"order_id":"01JD0000000000000000000000"`, `,"order_id":"01JD0000000000000000000000","total_cents":3998`, 1),
		strings.Replace(good, `,"order_id"`, `,"order_id":"x","order_id"`, 1),
	} {
		if decodeCanonical([]byte(msg), &in) {
			t.Errorf("optional fields out of order or twice, taken by the fast path: %s", msg)
		}
	}
	neg := strings.Replace(good, `"price_cents":1999`, `"price_cents":-9223372036854775808`, 1)
	if !decodeCanonical([]byte(neg), &in) || in.Items[0].PriceCents != -1<<63 {
		t.Errorf("minimum int64 = %+v", in.Items)
	}
}

// FuzzDecodeCanonical: whatever the fast path accepts, decodeStrict
// accepts too, with the same result.
func FuzzDecodeCanonical(f *testing.F) {
	for _, s := range canonicalSeeds() {
		f.Add(s)
	}
	f.Add([]byte(`{"user_id":-0,"items":[{"sku":"x","qty":-1,"price_cents":0}],"currency":"","total_cents":0,"order_id":"","created_at":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast submitInput
		if !decodeCanonical(data, &fast) {
			return
		}
		var strict submitInput
		if err := decodeStrict(data, &strict, submitFields); err != nil {
			t.Fatalf("fast path took %q, decodeStrict refused it: %v", data, err)
		}
		if !reflect.DeepEqual(fast, strict) {
			t.Fatalf("%q: fast path %+v, decodeStrict %+v", data, fast, strict)
		}
	})
}

// TestDecodeCanonicalOptionalFields: a direct publish without total_cents
// or created_at, and a POST /v1/orders body, as docs/API.md writes them.
func TestDecodeCanonicalOptionalFields(t *testing.T) {
	var in submitInput
	msg := `{"user_id":1,"items":[{"sku":"A1","qty":2,"price_cents":1999}],"currency":"CNY","order_id":"client-42"}`
	if !decodeCanonical([]byte(msg), &in) || in.OrderID != "client-42" || in.TotalCents != nil || in.CreatedAt != "" {
		t.Errorf("direct publish: %+v", in)
	}
	body := `{"user_id":1,"items":[{"sku":"A1","qty":2,"price_cents":1999}],"currency":"CNY"}`
	var oi orderInput
	if !decodeCanonicalInput([]byte(body), &oi) || oi.UserID != 1 || len(oi.Items) != 1 || oi.Items[0] != (item{"A1", 2, 1999}) || oi.Currency != "CNY" {
		t.Errorf("docs/API.md body: %+v", oi)
	}
	if decodeCanonicalInput([]byte(msg), &oi) {
		t.Error("a body with order_id taken by the POST /v1/orders fast path")
	}
}

// FuzzDecodeCanonicalInput: the POST /v1/orders fast path agrees with
// decodeStrict, also when decoding into a recycled input.
func FuzzDecodeCanonicalInput(f *testing.F) {
	f.Add([]byte(`{"user_id":1,"items":[{"sku":"A1","qty":2,"price_cents":1999}],"currency":"CNY"}`))
	f.Add([]byte(`{"user_id":1,"items":[{"sku":"A1","qty":2,"price_cents":1999},{"sku":"B","qty":1,"price_cents":0}],"currency":"USD"}`))
	f.Add([]byte(`{"user_id":1,"items":[{"sku":"A1","qty":2,"price_cents":1999}],"currency":"CNY","x":1}`))
	recycled := getInput()
	f.Fuzz(func(t *testing.T, data []byte) {
		// A pooled input that held a longer order before.
		recycled.Items = append(recycled.Items[:0], item{"old", 9, 9}, item{"old2", 8, 8}, item{"old3", 7, 7})
		recycled.reset()
		if !decodeCanonicalInput(data, recycled) {
			return
		}
		var strict orderInput
		if err := decodeStrict(data, &strict, acceptFields); err != nil {
			t.Fatalf("fast path took %q, decodeStrict refused it: %v", data, err)
		}
		if !reflect.DeepEqual(*recycled, strict) {
			t.Fatalf("%q: fast path %+v, decodeStrict %+v", data, *recycled, strict)
		}
	})
}
