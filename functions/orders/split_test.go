package orders

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// FuzzSplitArray: splitArray accepts every valid JSON array and splits it
// as encoding/json does; what it accepts that is not valid JSON has an
// item that is not (decodeBatch rejects such a message whole).
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{
		`[]`, ` [ ] `, `[1]`, `[1,2]`, ` [ {"a":1} , {"b":[1,2,{"c":"]"}]} ] `,
		`["a\"],[", "\\"]`, `[{"order_id":"x","items":[{"sku":"A"}]}]`, `[[],[[]],{}]`,
		`[`, `]`, `[1,]`, `[,1]`, `[1 2]`, `[1}`, `[{]`, `[{"a":1}}]`, `["a]`, `["\`, `[1] x`,
		`[{"order_id": }]`, `[1,,2]`, `{"a":1}`, `[` + "\t\r\n" + `1` + "\n" + `]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, ok := splitArray(data)
		var raws []json.RawMessage
		valid := json.Unmarshal(data, &raws) == nil && firstNonSpace(data) >= 0 && data[firstNonSpace(data)] == '['
		if valid {
			if !ok {
				t.Fatalf("valid array %q refused", data)
			}
			if len(items) != len(raws) {
				t.Fatalf("%q: %d items, encoding/json finds %d", data, len(items), len(raws))
			}
			for i := range raws {
				if !bytes.Equal(items[i], bytes.TrimSpace(raws[i])) {
					t.Fatalf("%q: item %d is %q, encoding/json has %q", data, i, items[i], raws[i])
				}
			}
			return
		}
		if !ok {
			return
		}
		for _, it := range items {
			if !json.Valid(it) {
				return // decodeBatch rejects the message on this item
			}
		}
		t.Fatalf("%q is not a JSON array, yet split into %d valid items", data, len(items))
	})
}

// TestDecodeBatchRejects: in one batch, a message whose array holds an
// item that is not JSON is rejected whole (no parts, none of its orders);
// the next message's invalid order is rejected on its own, under its own
// index; a repeated order_id is stored once, the first one.
func TestDecodeBatchRejects(t *testing.T) {
	body := func(id string, user, qty int) string {
		return fmt.Sprintf(`{"order_id":%q,"user_id":%d,"items":[{"sku":"A","qty":%d,"price_cents":100}],"currency":"USD"}`, id, user, qty)
	}
	at := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	msgs := []*runtime.Msg{
		{Data: []byte("[" + body("a-0", 1, 1) + "," + body("a-1", 1, 0) + `,{"order_id": }]`), Delivered: 1, Time: at},
		{Data: []byte("[" + body("b-0", 2, 1) + "," + body("b-1", 2, 0) + "," + body("b-2", 3, 2) + "," + body("b-0", 2, 5) + "]"), Delivered: 2, Time: at},
		{Data: []byte(body("c-0", 4, 1)), Delivered: 1},
	}
	orders, users, redelivered := decodeBatch(msgs, func() time.Time { return at.Add(time.Hour) })
	if !msgs[0].Settled() || len(msgs[0].RejectedParts()) != 0 {
		t.Errorf("message 0: settled %v, parts %v; want rejected whole, no parts", msgs[0].Settled(), msgs[0].RejectedParts())
	}
	if msgs[1].Settled() || len(msgs[1].RejectedParts()) != 1 || msgs[1].RejectedParts()[0].Index != 1 {
		t.Errorf("message 1: settled %v, parts %+v; want item 1 rejected alone", msgs[1].Settled(), msgs[1].RejectedParts())
	}
	var ids []string
	for _, o := range orders {
		ids = append(ids, fmt.Sprintf("%s/%d", o.OrderID, o.Items[0].Qty))
	}
	if got, want := strings.Join(ids, " "), "b-0/1 b-2/2 c-0/1"; got != want {
		t.Errorf("orders %s, want %s", got, want)
	}
	if fmt.Sprint(users) != "[2 3 4]" || !redelivered {
		t.Errorf("users %v, redelivered %v; want [2 3 4], true", users, redelivered)
	}
	if !orders[0].CreatedAt.Equal(at) || !orders[2].CreatedAt.Equal(at.Add(time.Hour)) {
		t.Errorf("created_at %v, %v; want the stream's time, then the batch's", orders[0].CreatedAt, orders[2].CreatedAt)
	}
}

// TestSubmitDecoderReuse: orders decoded one after another by one decoder
// keep their own items, whichever path decoded them, and an append to one
// order's items does not reach its neighbour's.
func TestSubmitDecoderReuse(t *testing.T) {
	var d submitDecoder
	now := func() time.Time { return time.Unix(0, 0) }
	bodies := []string{
		`{"user_id":1,"items":[{"sku":"A","qty":1,"price_cents":1},{"sku":"B","qty":2,"price_cents":2},{"sku":"C","qty":3,"price_cents":3}],"currency":"USD","order_id":"o1"}`,
		`{"user_id":2,"items":[{"sku":"D","qty":4,"price_cents":4}],"currency":"USD","order_id":"o2"}`,
		`{ "order_id": "o3", "user_id": 3, "currency": "USD", "items": [ {"qty": 5, "sku": "E", "price_cents": 5} ] }`, // the strict path
		`{"user_id":4,"items":[{"sku":"F","qty":6,"price_cents":6},{"sku":"G","qty":7,"price_cents":7}],"currency":"USD","order_id":"o4"}`,
	}
	var got []store.Order
	for _, b := range bodies {
		o, err := d.decode([]byte(b), now)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		got = append(got, o)
	}
	got[1].Items = append(got[1].Items, store.Item{SKU: "X", Qty: 9, PriceCents: 9})
	want := []string{"A1 B2 C3", "D4 X9", "E5", "F6 G7"}
	for i, o := range got {
		var s []string
		for _, it := range o.Items {
			s = append(s, fmt.Sprintf("%s%d", it.SKU, it.Qty))
		}
		if strings.Join(s, " ") != want[i] {
			t.Errorf("order %d items %v, want %s", i, s, want[i])
		}
	}
}
