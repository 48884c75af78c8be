package orders

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

func TestParseListQuery(t *testing.T) {
	hdr := func(user, query string) nats.Header {
		h := nats.Header{wire.HeaderParamPrefix + "user_id": {user}}
		if query != "" {
			h[wire.HeaderQuery] = []string{query}
		}
		return h
	}
	tests := []struct {
		name      string
		header    nats.Header
		body      string
		want      listQuery
		wantField string
	}{
		{name: "defaults", header: hdr("7", ""), want: listQuery{userID: 7, page: 1, size: 20}},
		{name: "page and size", header: hdr("7", "page=3&size=50"), want: listQuery{userID: 7, page: 3, size: 50}},
		{name: "size 1", header: hdr("7", "size=1"), want: listQuery{userID: 7, page: 1, size: 1}},
		{name: "size 100", header: hdr("7", "size=100"), want: listQuery{userID: 7, page: 1, size: 100}},
		{name: "other params ignored", header: hdr("7", "x=1"), want: listQuery{userID: 7, page: 1, size: 20}},
		{name: "user_id zero", header: hdr("0", ""), wantField: "user_id"},
		{name: "user_id negative", header: hdr("-1", ""), wantField: "user_id"},
		{name: "user_id text", header: hdr("abc", ""), wantField: "user_id"},
		{name: "user_id over int64", header: hdr("9223372036854775808", ""), wantField: "user_id"},
		{name: "page zero", header: hdr("7", "page=0"), wantField: "page"},
		{name: "page text", header: hdr("7", "page=two"), wantField: "page"},
		{name: "page empty", header: hdr("7", "page="), wantField: "page"},
		{name: "size zero", header: hdr("7", "size=0"), wantField: "size"},
		{name: "size 101", header: hdr("7", "size=101"), wantField: "size"},
		{name: "size fraction", header: hdr("7", "size=1.5"), wantField: "size"},
		{name: "body", body: `{"user_id":9,"page":2,"size":5}`, want: listQuery{userID: 9, page: 2, size: 5}},
		{name: "body defaults", body: `{"user_id":9}`, want: listQuery{userID: 9, page: 1, size: 20}},
		{name: "body page zero", body: `{"user_id":9,"page":0}`, wantField: "page"},
		{name: "body size text", body: `{"user_id":9,"size":"x"}`, wantField: "size"},
		{name: "body unknown field", body: `{"user_id":9,"limit":5}`, wantField: "limit"},
		{name: "body user missing", body: `{"page":1}`, wantField: "user_id"},
		{name: "body malformed", body: `{"user_id":`, wantField: "body"},
		{name: "after", header: hdr("7", "after=ord-1_A&size=100"), want: listQuery{userID: 7, page: 1, size: 100, after: "ord-1_A"}},
		{name: "after empty is the first page", header: hdr("7", "after="), want: listQuery{userID: 7, page: 1, size: 20}},
		{name: "after with page", header: hdr("7", "after=a&page=2"), wantField: "page"},
		{name: "after with page 1", header: hdr("7", "page=1&after=a"), wantField: "page"},
		{name: "after not an order_id", header: hdr("7", "after=a%20b"), wantField: "after"},
		{name: "after too long", header: hdr("7", "after="+strings.Repeat("a", MaxOrderIDLen+1)), wantField: "after"},
		{name: "body after", body: `{"user_id":9,"after":"x1","size":5}`, want: listQuery{userID: 9, page: 1, size: 5, after: "x1"}},
		{name: "body after with page", body: `{"user_id":9,"after":"x1","page":1}`, wantField: "page"},
		{name: "body after not a string", body: `{"user_id":9,"after":7}`, wantField: "after"},
		{name: "nothing", wantField: "user_id"},
		{name: "header wins over body", header: hdr("7", ""), body: `{"user_id":9}`, want: listQuery{userID: 7, page: 1, size: 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := runtime.NewRequest("fn.orders.list", []byte(tc.body), tc.header)
			got, err := parseListQuery(req)
			checkErr(t, err, tc.wantField)
			if err == nil && got != tc.want {
				t.Errorf("query = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAppendListResponse(t *testing.T) {
	orders := []json.RawMessage{json.RawMessage(`{"order_id":"b"}`), json.RawMessage(`{"order_id":"a"}`)}
	got := string(appendListResponse(nil, listQuery{userID: 3, page: 1, size: 20}, orders))
	if want := `{"user_id":3,"page":1,"size":20,"orders":[{"order_id":"b"},{"order_id":"a"}]}`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := string(appendListResponse(nil, listQuery{userID: 3, page: 1, size: 5}, nil)); got != `{"user_id":3,"page":1,"size":5,"orders":[]}` {
		t.Errorf("empty page = %s", got)
	}
}

func msg(seq uint64, delivered int, data string) *runtime.Msg {
	return &runtime.Msg{Subject: SubjectSubmit, Stream: "ORDERS", Seq: seq, Delivered: delivered, Data: []byte(data), Header: nats.Header{}}
}

func TestDecodeBatch(t *testing.T) {
	sub := func(id string, user int) string {
		return `{"order_id":"` + id + `","user_id":` + strconv.Itoa(user) + `,"items":[{"sku":"A","qty":1,"price_cents":5}],"currency":"EUR"}`
	}
	batch := []*runtime.Msg{
		msg(1, 1, sub("a", 1)),
		msg(2, 1, sub("b", 2)),
		msg(3, 1, `{"order_id":"c","user_id":1,"items":[],"currency":"EUR"}`),
		msg(4, 1, sub("a", 3)), // same order_id again: the first wins
		msg(5, 1, sub("d", 1)),
		msg(6, 1, `not json`),
	}
	calls := 0
	orders, users, redelivered := decodeBatch(batch, func() time.Time { calls++; return fixedNow })
	if len(orders) != 3 || orders[0].OrderID != "a" || orders[0].UserID != 1 || orders[1].OrderID != "b" || orders[2].OrderID != "d" {
		t.Errorf("orders = %+v", orders)
	}
	if len(users) != 2 || users[0] != 1 || users[1] != 2 {
		t.Errorf("users = %v", users)
	}
	if redelivered {
		t.Error("redelivered without a redelivery")
	}
	if calls != 1 {
		t.Errorf("clock read %d times, want once per batch", calls)
	}
	for i, m := range batch {
		wantRejected := i == 2 || i == 5
		if m.Settled() != wantRejected {
			t.Errorf("message %d settled = %v, want %v", i, m.Settled(), wantRejected)
		}
	}
	_, _, redelivered = decodeBatch([]*runtime.Msg{msg(1, 1, sub("a", 1)), msg(2, 2, sub("b", 1))}, time.Now)
	if !redelivered {
		t.Error("redelivery not noticed")
	}
}

func TestHotKey(t *testing.T) {
	if got := hotKey(9223372036854775807); got != "u.9223372036854775807" {
		t.Errorf("hotKey = %q", got)
	}
}

func TestPageCodec(t *testing.T) {
	page := []byte(`[{"order_id":"01A","user_id":7,"items":[{"sku":"a","qty":1,"price_cents":5}]},` +
		`{"order_id":"01B","user_id":7,"items":[{"sku":"a","qty":1,"price_cents":5}]}]`)
	v := encodePage([]byte("kept:"), page)
	if !bytes.HasPrefix(v, []byte("kept:")) || v[5] != pageS2 {
		t.Fatalf("encodePage did not append after dst: %q", v[:6])
	}
	v = v[5:]
	if len(v) >= len(page) {
		t.Errorf("encoded page is %d bytes, the JSON %d: not compressed", len(v), len(page))
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"s2", v, page},
		{"plain JSON", page, page},
		{"empty page", encodePage(nil, []byte("[]")), []byte("[]")},
		{"stale marker", staleMarker, nil},
		{"empty", nil, nil},
		{"corrupt s2", append([]byte{pageS2}, 0xff, 0xff, 0xff), nil},
		{"s2 of something else", encodePage(nil, []byte(`{"a":1}`)), nil},
	} {
		got, ok := decodePage(tc.in)
		if ok != (tc.want != nil) || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: decodePage = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}
