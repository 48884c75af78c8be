package orders

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "A1", `q"uote`, `back\slash`, "tab\tnl\ncr\r", "\x00\x01\x1f", "货号-9", "line\u2028sep\u2029", "<&>", "\ufffd"} {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: not JSON: %v", s, b, err)
		}
		if got != s {
			t.Errorf("round trip of %q = %q (encoded %s)", s, got, b)
		}
	}
}

// TestOrderMessageRoundTrip: what order-accept publishes is what
// order-persist stores.
func TestOrderMessageRoundTrip(t *testing.T) {
	in := orderInput{UserID: 42, Currency: "USD", Items: []item{
		{SKU: `we"ird\sku`, Qty: 3, PriceCents: 250}, {SKU: "B", Qty: 1, PriceCents: 0},
	}}
	total, verr := in.validate()
	if verr != nil {
		t.Fatal(verr)
	}
	created := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.FixedZone("X", 3600))
	b := appendIdentity(appendCanonical(nil, &in, total), "01JABCDEFGHJKMNPQRSTVWXYZ0", created)
	if !json.Valid(b) {
		t.Fatalf("not JSON: %s", b)
	}
	o, err := decodeSubmit(b, func() time.Time { t.Fatal("clock read"); return time.Time{} })
	if err != nil {
		t.Fatalf("persist rejects accept's message %s: %v", b, err)
	}
	if o.OrderID != "01JABCDEFGHJKMNPQRSTVWXYZ0" || o.UserID != 42 || o.TotalCents != 750 || o.Currency != "USD" ||
		!o.CreatedAt.Equal(created) || len(o.Items) != 2 || o.Items[0].SKU != `we"ird\sku` || o.Items[0].Qty != 3 {
		t.Errorf("decoded %+v from %s", o, b)
	}
	if got := string(acceptedResponse("X1", 3998)); got != `{"order_id":"X1","status":"accepted","total_cents":3998}` {
		t.Errorf("response = %s", got)
	}
}

// TestCanonicalPrefixIgnoresFormatting: the Idempotency-Key body hash
// covers the order, not the client's formatting.
func TestCanonicalPrefixIgnoresFormatting(t *testing.T) {
	canon := func(body string) string {
		var in orderInput
		if err := decodeStrict([]byte(body), &in, acceptFields); err != nil {
			t.Fatal(err)
		}
		total, err := in.validate()
		if err != nil {
			t.Fatal(err)
		}
		return string(appendCanonical(nil, &in, total))
	}
	a := canon(validBody)
	b := canon(" {\n\"currency\": \"CNY\", \"items\": [ {\"price_cents\":1999,\"qty\":2,\"sku\":\"A1\"} ], \"user_id\": 1 }")
	if a != b {
		t.Errorf("same order, different canonical form:\n%s\n%s", a, b)
	}
	if c := canon(strings.Replace(validBody, `"qty":2`, `"qty":3`, 1)); c == a {
		t.Error("different orders share a canonical form")
	}
}

func TestIDGenMonotonicAndUnique(t *testing.T) {
	g := newIDGen()
	frozen := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// One millisecond, many ids: all carry its time, in increasing order.
	var last string
	for range 1000 {
		id, err := g.next(frozen)
		if err != nil {
			t.Fatal(err)
		}
		u := ulid.MustParseStrict(id)
		if u.Time() != ulid.Timestamp(frozen) || id <= last {
			t.Fatalf("id %s (time %d) after %s", id, u.Time(), last)
		}
		last = id
	}
	// Concurrent callers whose clock reads interleave, including a clock
	// going back: every id unique, each caller's ids increasing.
	const goroutines, per = 16, 2000
	ids := make([][]string, goroutines)
	var wg sync.WaitGroup
	for w := range goroutines {
		wg.Go(func() {
			for i := range per {
				at := time.Now()
				if i%3 == 0 {
					at = frozen // behind every other read
				}
				id, err := g.next(at)
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], id)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, list := range ids {
		prev := ""
		for _, id := range list {
			if seen[id] {
				t.Fatalf("duplicate id %s", id)
			}
			seen[id] = true
			if _, err := ulid.ParseStrict(id); err != nil || len(id) != 26 || !validOrderID(id) {
				t.Fatalf("bad id %q: %v", id, err)
			}
			if id <= prev {
				t.Fatalf("ids of one caller not increasing: %s after %s", id, prev)
			}
			prev = id
		}
	}
}
